package taskspec

// DirectivePrefix starts a task directive: a line of a function's or method's doc comment
// that begins with exactly these bytes, in Go's directive form (no space after //, which
// gofmt leaves alone), followed by the kind. A function with such a line is a task. Package
// gen parses the rest of the line; package taskvet only needs to know which functions
// are tasks, and both decide it with this prefix.
const DirectivePrefix = "//task:"

// RegisterName is the function generated once per package: it registers every task of
// the package on a worker, taking the package's lifespan values.
const RegisterName = "RegisterTasks"

// Names are the package-level names generated for one task function. base is F for a
// function F and TM for a method M of T or *T.
type Names struct {
	Args   string // FArgs, the serialized arguments
	Task   string // FTask, the task.Def
	Submit string // SubmitF
	// SubmitMany is SubmitFMany, the bulk submit of a slice of FArgs.
	SubmitMany string
	Result     string // ResultF, the typed result
}

// NamesOf returns the names generated for the task whose base name is base.
func NamesOf(base string) Names {
	return Names{Args: base + "Args", Task: base + "Task", Submit: "Submit" + base, SubmitMany: "Submit" + base + "Many", Result: "Result" + base}
}

// All returns the names in the order the generated file declares them.
func (n Names) All() []string { return []string{n.Args, n.Task, n.Submit, n.SubmitMany, n.Result} }
