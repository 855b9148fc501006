package task

// SchedulesOf is schedulesOf, for the tests of package task_test.
var SchedulesOf = schedulesOf
