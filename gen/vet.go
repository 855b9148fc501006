package gen

import (
	"fmt"
	"os"

	"github.com/taskgen/taskgen/taskvet"
	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/packages"
)

// vet runs package taskvet's analyzer on every package of pkgs that has tasks, with its
// default configuration, and returns what it reports as warnings, sorted. They never make
// a run fail: the analyzer, or a bug in it, must not stand between a user and the
// generated code.
//
// The analyzer needs a package's syntax and types and nothing else (no facts, no other
// analyzers, no dependencies' syntax), which is exactly what load loaded. So it runs on
// those packages through a Pass built here, not through go/analysis/checker, which wants
// NeedTypesSizes and skips a package with type errors: generated names referenced
// before they exist are type errors that load tolerates.
func vet(pkgs []*packages.Package, outs []output) []Error {
	tasks := map[string]bool{}
	for _, o := range outs {
		if o.tasks && o.src != nil {
			tasks[o.pkgPath] = true
		}
	}
	var warnings errorList
	for _, pkg := range pkgs {
		if !tasks[pkg.PkgPath] || pkg.Types == nil || pkg.TypesInfo == nil {
			continue
		}
		if err := vetPackage(pkg, &warnings); err != nil {
			warnings = append(warnings, Error{Msg: fmt.Sprintf("taskvet skipped %s: %v", pkg.PkgPath, err)})
		}
	}
	return warnings
}

// vetPackage runs the analyzer on pkg, adding its diagnostics to warnings.
func vetPackage(pkg *packages.Package, warnings *errorList) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error: %v (please report it)", r)
		}
	}()
	pass := &analysis.Pass{
		Analyzer:   taskvet.Analyzer,
		Fset:       pkg.Fset,
		Files:      pkg.Syntax,
		OtherFiles: pkg.OtherFiles,
		Pkg:        pkg.Types,
		TypesInfo:  pkg.TypesInfo,
		TypesSizes: pkg.TypesSizes,
		TypeErrors: pkg.TypeErrors,
		Module:     &analysis.Module{},
		ResultOf:   map[*analysis.Analyzer]any{},
		ReadFile:   os.ReadFile,
		Report: func(d analysis.Diagnostic) {
			warnings.add(pkg.Fset, d.Pos, "%s", d.Message)
		},
	}
	_, err = taskvet.Analyzer.Run(pass)
	return err
}
