// Package eif reads and writes AWS Nitro Enclave Image Files and measures
// them: PCR0, PCR1 and PCR2 (and PCR8 for signed images) exactly as
// nitro-cli computes them, so anyone can recompute the values a client pins
// from the image alone.
//
// Layout (all integers big-endian): a 548-byte header — magic ".eif",
// version u16, flags u16, default memory u64, default CPUs u64, reserved
// u16, section count u16, 32 section offsets u64, 32 section sizes u64,
// unused u32, CRC-32 (IEEE) u32 — then each section as a 12-byte section
// header (type u16, flags u16, size u64) followed by its data. The CRC covers
// every byte of the file except the CRC field itself.
//
// Measurements: with H = SHA-384 and extend(d) = H(0⁴⁸ ‖ d),
//
//	PCR0 = extend(H(kernel ‖ cmdline ‖ ramdisk₀ ‖ … ‖ ramdiskₙ))
//	PCR1 = extend(H(kernel ‖ cmdline ‖ ramdisk₀))
//	PCR2 = extend(H(ramdisk₁ ‖ … ‖ ramdiskₙ))
//	PCR8 = extend(H(DER of the signing certificate)), for signed images
//
// in file order; the metadata section is not measured.
//
// Signed images: the signature section holds the signing certificate and a
// COSE_Sign1 (ES384) by its key over PCR0, encoded as nitro-cli encodes
// them (signature.go has the layout). Measure checks it strictly: the exact
// encoding, a P-384 certificate that parses, a signature that verifies
// with its key, over this image's PCR0; any fault is an error wrapping
// ErrSignature, never a PCR8 reported for an image that would not carry it.
// Sign appends such a section, for operators who sign without nitro-cli.
package eif
