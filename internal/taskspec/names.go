package taskspec

// RegisterName is the function generated once per package: it registers every task of
// the package on a worker, taking the package's lifespan values.
const RegisterName = "RegisterTasks"

// Names are the package-level names generated for one task function. base is F for a
// function F and TM for a method M of T or *T.
type Names struct {
	Args   string // FArgs, the serialized arguments
	Task   string // FTask, the task.Def
	Submit string // SubmitF
	Result string // ResultF, the typed result
}

// NamesOf returns the names generated for the task whose base name is base.
func NamesOf(base string) Names {
	return Names{Args: base + "Args", Task: base + "Task", Submit: "Submit" + base, Result: "Result" + base}
}

// All returns the names in the order the generated file declares them.
func (n Names) All() []string { return []string{n.Args, n.Task, n.Submit, n.Result} }
