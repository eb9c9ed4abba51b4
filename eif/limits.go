package eif

// Bounds on an image.
const (
	// HeaderSize is the size of the EIF header.
	HeaderSize = 4 + 2 + 2 + 8 + 8 + 2 + 2 + 8*MaxSections + 8*MaxSections + 4 + 4
	// SectionHeaderSize is the size of a section header.
	SectionHeaderSize = 2 + 2 + 8
	// MaxSections is the number of section slots in the header.
	MaxSections = 32
	// MaxImage bounds the whole file (nitro-cli images are tens to hundreds
	// of MiB).
	MaxImage = 8 << 30
	// maxSmallSection bounds the sections read into memory (cmdline,
	// metadata, signature).
	maxSmallSection = 1 << 20
	// minVersion is the first version with a CRC; maxVersion the newest known.
	minVersion = 2
	maxVersion = 4
)
