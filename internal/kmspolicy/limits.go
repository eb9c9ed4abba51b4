package kmspolicy

// Bounds of a key policy document.
const (
	// MaxSize is the largest key policy AWS KMS stores (32 KB).
	MaxSize = 32 << 10
	// maxDepth bounds nesting: document, Statement list, statement,
	// Condition, operator, key, value list.
	maxDepth = 8
	// maxStatements bounds the statements of one document.
	maxStatements = 256
	// maxValues bounds the values of one list (actions, principals,
	// resources, condition values).
	maxValues = 256
)
