// Package promptcascade_test checks rules of the repository's layout that
// no single package can check for itself.
package promptcascade_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestInternalNeverExits: library code under internal/ never ends the
// process; only cmd/* decides how a program exits.
func TestInternalNeverExits(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir("internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files++
		osName := ""
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == "os" {
				osName = "os"
				if imp.Name != nil {
					osName = imp.Name.Name
				}
			}
		}
		if osName == "" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == osName && sel.Sel.Name == "Exit" {
				t.Errorf("%s: internal code calls os.Exit; give the caller a hook or return an error", fset.Position(sel.Pos()))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d Go files found under internal/: the test did not look where it should", files)
	}
}

// TestEnqueueLinksNoWorkerCode: enqueue and the settings package link no
// provider adapter, cascade, wiring or worker code; only cmd/worker builds
// those.
func TestEnqueueLinksNoWorkerCode(t *testing.T) {
	const mod = "github.com/promptcascade/promptcascade/"
	forbidden := []string{"internal/llm/openai", "internal/llm/anthropic", "internal/llm/gemini", "internal/llm/sim",
		"internal/cascade", "internal/worker", "internal/wire"}
	for _, pkg := range []string{"./cmd/enqueue", "./internal/config", "./cmd/internal/connect"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if !slices.Contains(deps, mod+"internal/queue") && pkg == "./cmd/enqueue" {
			t.Fatalf("go list -deps %s does not list internal/queue: the test is not reading what it should\n%s", pkg, out)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == mod+f || strings.HasPrefix(d, mod+f+"/") {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
	}
}

// TestJetStreamCodeOnlyInQueue: every use of nats.go outside tests is in
// internal/queue (and the test helper natstest).
func TestJetStreamCodeOnlyInQueue(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || path == filepath.Join("internal", "queue") || path == filepath.Join("internal", "natstest")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		checked++
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); strings.HasPrefix(p, "github.com/nats-io/nats.go") {
				t.Errorf("%s imports %s: JetStream code belongs in internal/queue", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("only %d Go files checked: the test did not look where it should", checked)
	}
}

// TestFaultTestsSkipUnderShort: `make test-short` (go test -short) runs
// without the fault-injection tests, as the Makefile and the README say.
// Outside e2e (whose every test skips in its setup), a test named
// TestFault* or TestBrokerFault* stops, restarts or kills a service under a
// running worker, and must begin with faultTest(t), which skips it.
func TestFaultTestsSkipUnderShort(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir("internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || fn.Body == nil ||
				!(strings.HasPrefix(fn.Name.Name, "TestFault") || strings.HasPrefix(fn.Name.Name, "TestBrokerFault")) {
				continue
			}
			checked++
			if !beginsWithCall(fn.Body, "faultTest") {
				t.Errorf("%s: %s does not begin with faultTest(t): it would run under make test-short", fset.Position(fn.Pos()), fn.Name.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 8 {
		t.Fatalf("only %d fault tests found under internal/: the test did not look where it should", checked)
	}
}

// beginsWithCall says whether body's first statement is a call of the
// function name.
func beginsWithCall(body *ast.BlockStmt, name string) bool {
	if len(body.List) == 0 {
		return false
	}
	es, ok := body.List[0].(*ast.ExprStmt)
	if !ok {
		return false
	}
	call, ok := es.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	id, ok := call.Fun.(*ast.Ident)
	return ok && id.Name == name
}
