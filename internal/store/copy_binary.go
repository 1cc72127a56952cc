package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The direct write encodes its COPY rows itself, in PostgreSQL's binary COPY
// format (the format pgx's CopyFrom sends too), straight from the results
// into a reused buffer: pgx encodes every value through pgtype.Map behind an
// interface (a boxed value per column, numeric through math/big), which was
// about a fifth of the worker's CPU at sim latency 0.
//
// A stream is the 19-byte header, then per row an int16 field count and per
// field an int32 length (-1: NULL) and the value in its type's binary send
// format, then the int16 -1 trailer.

// copyRows are rows a binary COPY sends: n of them, row k appended by encode.
type copyRows interface {
	rows() int
	encode(e *copyEnc, k int)
}

// copyEnc appends values in binary COPY format to buf. A value that its
// column cannot take (an int beyond int32) sets err, which ends the COPY.
type copyEnc struct {
	buf []byte
	err error
}

var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

func (e *copyEnc) tuple(fields int16) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(fields)) }

func (e *copyEnc) null() { e.buf = binary.BigEndian.AppendUint32(e.buf, math.MaxUint32) }

func (e *copyEnc) size(n int) { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(n)) } //nolint:gosec // n < 1 GB: a COPY value

// text appends s as a text value, as it is (see cleanText).
func (e *copyEnc) text(s string) {
	e.size(len(s))
	e.buf = append(e.buf, s...)
}

// cleanText appends clean(s).
func (e *copyEnc) cleanText(s string) { e.text(clean(s)) }

// nullText appends clean(s), or NULL for "" (as nullText).
func (e *copyEnc) nullText(s string) {
	if s == "" {
		e.null()
		return
	}
	e.cleanText(s)
}

func (e *copyEnc) bytea(b []byte) {
	e.size(len(b))
	e.buf = append(e.buf, b...)
}

// jsonb appends JSON text as jsonb (version 1, then the text), or NULL for
// nil.
func (e *copyEnc) jsonb(b []byte) {
	if b == nil {
		e.null()
		return
	}
	e.size(1 + len(b))
	e.buf = append(e.buf, 1)
	e.buf = append(e.buf, b...)
}

func (e *copyEnc) int4(n int) {
	if n < math.MinInt32 || n > math.MaxInt32 {
		if e.err == nil {
			e.err = fmt.Errorf("copy: %d is beyond an integer column", n)
		}
		n = 0
	}
	e.size(4)
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(int32(n))) //nolint:gosec // range checked above
}

// nullInt4 appends n, or NULL for 0 (as nullInt).
func (e *copyEnc) nullInt4(n int) {
	if n == 0 {
		e.null()
		return
	}
	e.int4(n)
}

// nullInt8 appends n, or NULL for n <= 0 (as nullInt64).
func (e *copyEnc) nullInt8(n int64) {
	if n <= 0 {
		e.null()
		return
	}
	e.size(8)
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(n))
}

func (e *copyEnc) float8(f float64) {
	e.size(8)
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *copyEnc) bool(b bool) {
	e.size(1)
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// y2kMicros is 2000-01-01 UTC, timestamptz's epoch, in microseconds since
// the Unix epoch.
const y2kMicros = 946_684_800 * 1_000_000

// timestamptz appends t as microseconds since 2000-01-01 UTC (nanoseconds
// truncated, as pgx does).
func (e *copyEnc) timestamptz(t time.Time) {
	e.size(8)
	us := t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - y2kMicros
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(us)) //nolint:gosec // two's complement, as Postgres reads it
}

// nullTimestamptz appends t, or NULL for the zero time (as nullTime).
func (e *copyEnc) nullTimestamptz(t time.Time) {
	if t.IsZero() {
		e.null()
		return
	}
	e.timestamptz(t)
}

// numeric appends units × 10^-costScale (|units| < 10^18) as a numeric in
// Postgres' binary form, as numeric_send writes a numeric(18, 10): base-10000
// digits without leading or trailing zero digits, weight the power of 10000
// of the first, display scale 10 (zero has no digits).
func (e *copyEnc) numeric(units int64) {
	const (
		pos, neg = 0x0000, 0x4000
		unit     = 10_000_000_000 // 10^costScale
	)
	sign := uint16(pos)
	u := uint64(units) //nolint:gosec // negated below when negative
	if units < 0 {
		sign, u = neg, uint64(-units) //nolint:gosec // |units| < 10^18
	}
	ip, frac := u/unit, u%unit*100 // 12 fractional digits: 3 base-10000 digits
	// Digits of 10000^1, 10000^0, 10000^-1, ^-2, ^-3.
	d := [5]uint16{uint16(ip / 10000 % 10000), uint16(ip % 10000), //nolint:gosec // each < 10000
		uint16(frac / 100_000_000), uint16(frac / 10000 % 10000), uint16(frac % 10000)} //nolint:gosec // each < 10000
	first, last := 0, len(d)
	for first < last && d[first] == 0 {
		first++
	}
	for last > first && d[last-1] == 0 {
		last--
	}
	weight := 1 - first
	if first == last {
		weight, sign = 0, pos
	}
	n := last - first
	e.size(8 + 2*n)
	e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(n))      //nolint:gosec // n <= 5
	e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(weight)) //nolint:gosec // two's complement int16
	e.buf = binary.BigEndian.AppendUint16(e.buf, sign)
	e.buf = binary.BigEndian.AppendUint16(e.buf, costScale)
	for _, v := range d[first:last] {
		e.buf = binary.BigEndian.AppendUint16(e.buf, v)
	}
}

// copyChunk is how much a copyReader encodes at a time: pgconn sends what
// one Read returns as one CopyData message of up to 64 kB.
const copyChunk = 64 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2*copyChunk); return &b }}

// copyReader streams rows as a binary COPY, copyChunk bytes at a time.
type copyReader struct {
	rows    copyRows
	n, k    int
	enc     copyEnc
	off     int // of enc.buf, sent up to here
	trailer bool
	// failed holds enc.err once Read returned it: pgconn reads r in a
	// goroutine of its own, which can still run after CopyFrom returned
	// (on a connection or fatal server error), so copyBinary reads the
	// error here instead of in enc.
	failed atomic.Pointer[error]
}

func (r *copyReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.off == len(r.enc.buf) {
			if r.trailer {
				break
			}
			r.fill()
			if err := r.enc.err; err != nil {
				r.failed.Store(&err)
				return 0, err
			}
		}
		c := copy(p[n:], r.enc.buf[r.off:])
		n += c
		r.off += c
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// fill encodes the next rows, the header first and the trailer last.
func (r *copyReader) fill() {
	r.enc.buf, r.off = r.enc.buf[:0], 0
	if r.k == 0 {
		r.enc.buf = append(r.enc.buf, copyHeader...)
	}
	for r.k < r.n && len(r.enc.buf) < copyChunk {
		r.rows.encode(&r.enc, r.k)
		r.k++
	}
	if r.k == r.n {
		r.enc.buf = binary.BigEndian.AppendUint16(r.enc.buf, math.MaxUint16) // -1
		r.trailer = true
	}
}

// copySQL is the statement of a binary COPY into table's columns.
func copySQL(table string, columns []string) string {
	var b strings.Builder
	b.WriteString("COPY " + pgx.Identifier{table}.Sanitize() + " (")
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	b.WriteString(") FROM STDIN (FORMAT binary)")
	return b.String()
}

// copyBinary runs sql (see copySQL) inside tx, sending rows.
func copyBinary(ctx context.Context, tx pgx.Tx, sql string, rows copyRows) error {
	buf := copyBufs.Get().(*[]byte)
	r := &copyReader{rows: rows, n: rows.rows(), enc: copyEnc{buf: (*buf)[:0]}}
	_, err := tx.Conn().PgConn().CopyFrom(ctx, r, sql)
	if p := r.failed.Load(); p != nil {
		return *p
	}
	// Only a COPY that succeeded surely waited for pgconn's reader
	// goroutine: after a connection error or a fatal server error (the
	// connection killed) CopyFrom returns while it may still be in r.Read,
	// writing into the buffer, which must then not serve another COPY.
	if err == nil && cap(r.enc.buf) <= 4*copyChunk {
		*buf = r.enc.buf[:0]
		copyBufs.Put(buf)
	}
	return err
}
