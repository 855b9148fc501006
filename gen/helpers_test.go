package gen

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"testing"
)

// typecheck type-checks src as package example.com/p, importing the standard library from
// export data.
func typecheck(t *testing.T, src string) *types.Package {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", nil)}
	pkg, err := conf.Check("example.com/p", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatalf("type-check: %v\n%s", err, src)
	}
	return pkg
}

// funcParams returns the parameters of function name in pkg as schema fields.
func funcParams(t *testing.T, pkg *types.Package, name string) []schemaField {
	t.Helper()
	fn, ok := pkg.Scope().Lookup(name).(*types.Func)
	if !ok {
		t.Fatalf("no function %s", name)
	}
	params := fn.Type().(*types.Signature).Params()
	var fields []schemaField
	for i := 0; i < params.Len(); i++ {
		fields = append(fields, schemaField{name: params.At(i).Name(), typ: params.At(i).Type()})
	}
	return fields
}

// funcResult returns the first result type of function name in pkg.
func funcResult(t *testing.T, pkg *types.Package, name string) types.Type {
	t.Helper()
	fn, ok := pkg.Scope().Lookup(name).(*types.Func)
	if !ok {
		t.Fatalf("no function %s", name)
	}
	return fn.Type().(*types.Signature).Results().At(0).Type()
}
