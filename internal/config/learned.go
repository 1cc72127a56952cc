package config

import (
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/promptcascade/promptcascade/internal/router"
)

// Learned is classifier.kind: learned: a router file and how its scores
// become tiers (Cutoffs, computed from shares: or given as thresholds:).
type Learned struct {
	Path    string         // the router file, as resolved (relative paths are relative to the routes file)
	Router  *router.Router // loaded and validated
	Shares  *router.Shares // set when the file gave shares:
	Cutoffs router.Cutoffs // the scores at which moderate and complex start
}

// Shadow is the shadow: section (cascade.Shadow).
type Shadow struct {
	Share float64
	Judge string
}

// classifierKind holds the kind-related keys of the classifier: section
// while it is decoded.
type classifierKind struct {
	kind, model         string
	kindNode, modelNode *yaml.Node
	shares              *router.Shares
	sharesNode          *yaml.Node
	thresholds          *router.Cutoffs
	thresholdsNode      *yaml.Node
}

func (f *routesFile) kindFields(c *classifierKind) fields {
	d := f.d
	const p = "classifier."
	return fields{
		"kind": func(v *yaml.Node) {
			if d.text(v, p+"kind", &c.kind) && c.kind != "heuristic" && c.kind != "learned" {
				d.errorf(v, p+"kind", "%q is not heuristic or learned", c.kind)
			}
			c.kindNode = v
		},
		"model": func(v *yaml.Node) {
			d.text(v, p+"model", &c.model)
			c.modelNode = v
		},
		"shares": func(v *yaml.Node) {
			var s router.Shares
			ok := true
			d.object(v, p+"shares", fields{
				"simple":   func(v *yaml.Node) { ok = d.number(v, p+"shares.simple", &s.Simple) && ok },
				"moderate": func(v *yaml.Node) { ok = d.number(v, p+"shares.moderate", &s.Moderate) && ok },
				"complex":  func(v *yaml.Node) { ok = d.number(v, p+"shares.complex", &s.Complex) && ok },
			})
			if !ok {
				return
			}
			if err := s.Validate(); err != nil {
				d.errorf(v, p+"shares", "%v", err)
				return
			}
			c.shares, c.sharesNode = &s, v
		},
		"thresholds": func(v *yaml.Node) {
			var t router.Cutoffs
			ok, set := true, 0
			d.object(v, p+"thresholds", fields{
				"moderate": func(v *yaml.Node) { ok = d.number(v, p+"thresholds.moderate", &t.Moderate) && ok; set++ },
				"complex":  func(v *yaml.Node) { ok = d.number(v, p+"thresholds.complex", &t.Complex) && ok; set++ },
			})
			if !ok {
				return
			}
			if set != 2 {
				d.errorf(v, p+"thresholds", "set both moderate and complex")
				return
			}
			if err := t.Validate(); err != nil {
				d.errorf(v, p+"thresholds", "%v", err)
				return
			}
			c.thresholds, c.thresholdsNode = &t, v
		},
	}
}

// learned checks the kind keys and, for kind: learned, loads the router
// file and turns shares into cutoffs.
func (f *routesFile) learned(section *yaml.Node, c *classifierKind) {
	d := f.d
	const p = "classifier."
	if c.kind != "learned" {
		for _, k := range []struct {
			n    *yaml.Node
			name string
		}{{c.modelNode, "model"}, {c.sharesNode, "shares"}, {c.thresholdsNode, "thresholds"}} {
			if k.n != nil {
				d.errorf(k.n, p+k.name, "only for classifier.kind: learned")
			}
		}
		return
	}
	if c.model == "" {
		if c.modelNode == nil {
			d.errorf(c.kindNode, p+"model", "required when classifier.kind is learned (the file `cascadectl router train` wrote)")
		}
		return
	}
	switch {
	case c.shares != nil && c.thresholds != nil:
		d.errorf(c.thresholdsNode, p+"thresholds", "give shares or thresholds, not both")
		return
	case c.shares == nil && c.thresholds == nil:
		if c.sharesNode == nil && c.thresholdsNode == nil {
			d.errorf(section, "classifier", "kind learned needs shares: {simple, moderate, complex} or thresholds: {moderate, complex}")
		}
		return
	}
	path := c.model
	if !filepath.IsAbs(path) && f.rt.Source != builtinRoutes {
		path = filepath.Join(filepath.Dir(f.rt.Source), path)
	}
	r, err := router.LoadFile(path)
	if err != nil {
		d.errorf(c.modelNode, p+"model", "%v", err)
		return
	}
	l := &Learned{Path: path, Router: r, Shares: c.shares}
	if c.thresholds != nil {
		l.Cutoffs = *c.thresholds
	} else if l.Cutoffs, err = r.CutoffsFor(*c.shares); err != nil {
		d.errorf(c.sharesNode, p+"shares", "%v", err)
		return
	}
	f.rt.Learned = l
}

func (f *routesFile) decodeShadow(v *yaml.Node) {
	d, s := f.d, &f.rt.Shadow
	var shareNode *yaml.Node
	d.object(v, "shadow", fields{
		"share": func(v *yaml.Node) {
			if d.number(v, "shadow.share", &s.Share) {
				d.share(v, "shadow.share", s.Share)
			}
			shareNode = v
		},
		"judge": func(v *yaml.Node) {
			if d.text(v, "shadow.judge", &s.Judge) {
				f.judge = v
			}
		},
	})
	if shareNode != nil && s.Share > 0 && s.Judge == "" && f.judge == nil {
		d.errorf(shareNode, "shadow.judge", "required when shadow.share is set (the model that compares the two answers)")
	}
}
