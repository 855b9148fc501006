package task

// MaxFlushes is maxFlushes, for the test of a Submit that waits for a flush.
const MaxFlushes = maxFlushes
