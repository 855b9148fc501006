// Package gen is the taskgen code generator: it turns functions marked with a
// //task:<kind> directive into typed submit and register code on top of package
// github.com/taskgen/taskgen/runtime/task.
//
// Data flows one way, one stage per file:
//
//   - load.go: one packages.Load for all patterns, with -tags=taskgen so that the
//     generated files (//go:build !taskgen && !generate) never take part, tolerating
//     type errors about the names this run generates; without tests, so that no test
//     file is ever scanned for tasks, but the in-package test files of a package with
//     tasks are parsed (not type-checked) for declarations that would clash with the
//     generated ones;
//   - directive.go: find and parse the //task: directives, from CommentGroup.List;
//   - model.go: classify parameters (context, caller, info, lifespan, argument), check
//     results, kinds and names (against declarations, imports and test files), collect
//     the lifespan values by name;
//   - check.go and wire.go: the serializability check, modelled on encoding/json;
//   - schema.go: the wire description of each task's arguments (Def.Wire) and its
//     fingerprint (Def.Schema), built from the Go types; the grammar, canonical form,
//     fingerprint and compatibility rules are package internal/wireschema's;
//     schema_v1.go: the fingerprint of the taskgen before Wire (Def.PreviousSchema);
//   - emit.go: the generated file, built with jennifer, each task's declarations
//     formatted on their own and in parallel, the imports grouped as goimports does;
//     formatcache.go: skip formatting a file that is unchanged;
//   - write.go and run.go: compare, write atomically or remove orphans;
//   - diff.go: the unified diff -check prints for an out-of-date file, as diff -u does;
//   - against.go: -check -against REV, the compatibility of the tasks as generated now
//     with the generated files at a git revision, by internal/wireschema's rules;
//   - vet.go: with Config.Vet, package taskvet's analyzer on the loaded packages with
//     tasks, its findings returned as warnings.
//
// Run is the entry point; cmd/taskgen only parses flags and maps results to exit codes.
package gen
