// Package taskspec holds the rules of a task's declaration that the generator and the
// runtime must agree on, each written once: the syntax of task kinds and queue names,
// the defaults a //task: directive leaves out, and the names the generator gives a
// task's code.
//
// A rule the two sides wrote each in its own way is a rule they can disagree on: a
// queue the generator accepted and RegisterTasks then refused at run time. So gen
// validates directives with CheckKind and CheckQueue, and runtime/task validates every
// Def, Submit and WithQueues with the same functions.
package taskspec
