package state

// The S3 store's listing bounds, for the contract tests to page past.
const (
	MaxListPage  = maxListPage
	MaxListPages = maxListPages
)
