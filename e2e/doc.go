// Package e2e holds the end-to-end tests: an application package generated and built
// in a module of its own, and the chaos test of workers and Redis being killed.
package e2e
