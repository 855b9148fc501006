// Package taskctl is the taskctl command: it inspects and operates the queues of a
// taskgen deployment through task.Inspector, from a shell or from a web console.
//
// The command lives here, not in cmd/taskctl, so that it can be called in-process (the
// demo does, and so do the tests): Main takes its arguments, its environment and its
// output streams instead of reading os.Args and os.Getenv.
//
//	taskctl [global flags] COMMAND [flags] [arguments]
//
//	queues                         every known queue with its counts
//	tasks QUEUE [--state S]        one page of a queue's tasks (pending by default)
//	show ID | show QUEUE ENTRY     one task, or one dead letter by its entry id
//	requeue ID... | requeue QUEUE --all [--kind K] [--reason R]
//	delete ID... | delete QUEUE --entry E
//	cancel ID...
//	pause QUEUE, resume QUEUE
//	purge QUEUE --yes              delete every dead letter of QUEUE
//	serve [--listen ADDR]          the web console
//
// Global flags (before or after the command): --redis URL (or TASKGEN_REDIS_URL),
// --prefix P (or TASKGEN_PREFIX), --keys-file PATH (or TASKGEN_KEYS_FILE), --json.
//
// Keys never come from a flag, where they would land in the shell's history: they come
// from TASKGEN_SIGNING_KEYS ("id:base64,id:base64", the first signs), TASKGEN_SEAL_KEY
// (base64) and TASKGEN_RETIRED_KEYS ("id:base64:RFC3339,..."), or from a keys file (see
// LoadKeysFile) that only its owner can read.
//
// Exit codes: 0 success; 1 the operation failed (Redis, a refused action, a bulk action
// that skipped entries); 2 usage (unknown command or flag, bad argument, bad key
// configuration); 3 not found (the task or dead letter does not exist).
package taskctl
