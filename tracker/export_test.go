package tracker

// PendingCountQuery is PendingCount's query, for the test that EXPLAINs it.
var PendingCountQuery = pendingCountQuery
