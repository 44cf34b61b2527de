// A command used wrongly: a bad option or value. Its message says what was wrong and what to do; `tailguard` prints it
// as is and exits with status 2 (any other error: status 1).
export class UsageError extends Error {}
