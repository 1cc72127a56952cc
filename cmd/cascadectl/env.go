package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/promptcascade/promptcascade/cmd/internal/connect"
	"github.com/promptcascade/promptcascade/internal/config"
	"github.com/promptcascade/promptcascade/internal/queue"
	"github.com/promptcascade/promptcascade/internal/store"
)

// env lazily builds what a command needs.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	cfg            *config.Ctl
	st             *store.Store
	migrated       bool
	qc             *queue.Conn
}

func (e *env) config(ctx context.Context) (*config.Ctl, error) {
	if e.cfg != nil {
		return e.cfg, nil
	}
	c, err := config.LoadCtl(ctx, nil)
	if err != nil {
		return nil, &exitError{2, err}
	}
	e.cfg = c
	return c, nil
}

func (e *env) logger(ctx context.Context) *slog.Logger {
	c, err := e.config(ctx)
	if err != nil {
		return slog.New(slog.DiscardHandler)
	}
	return config.NewLogger(e.stderr, c.LogLevel, c.LogFormat)
}

// store opens the database and applies the migrations every report needs.
func (e *env) store(ctx context.Context) (*store.Store, error) {
	st, err := e.open(ctx)
	if err != nil {
		return nil, err
	}
	if !e.migrated {
		if err := st.Migrate(ctx); err != nil {
			return nil, err
		}
		e.migrated = true
	}
	return st, nil
}

// open opens the database without touching its schema (ping).
func (e *env) open(ctx context.Context) (*store.Store, error) {
	if e.st != nil {
		return e.st, nil
	}
	c, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, c.Postgres.DatabaseURL)
	if err != nil {
		return nil, err
	}
	e.st = st
	return st, nil
}

func (e *env) queue(ctx context.Context) (*queue.Conn, error) {
	if e.qc != nil {
		return e.qc, nil
	}
	c, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	qc, err := connect.Queue(ctx, c.NATS, e.logger(ctx))
	if err != nil {
		return nil, err
	}
	e.qc = qc
	return qc, nil
}

func (e *env) close() {
	if e.st != nil {
		e.st.Close()
	}
	if e.qc != nil {
		e.qc.Close()
	}
}

// routes loads the routes file at path (default ROUTES_FILE, else the
// built-in routes) with the PRICING_FILE prices.
func (e *env) routes(ctx context.Context, path string) (*config.Routes, error) {
	c, err := e.config(ctx)
	if err != nil {
		return nil, err
	}
	if path == "" {
		path = c.RoutesFile
	}
	prices, err := config.LoadPrices(c.PricingFile)
	if err != nil {
		return nil, err
	}
	return config.LoadRoutes(path, prices)
}
