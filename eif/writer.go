package eif

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
)

// Section is one section to write.
type Section struct {
	Type  uint16
	Flags uint16
	Data  []byte
}

// Image is an image to write: its sections in file order.
type Image struct {
	Version     uint16 // zero means 4
	Flags       uint16
	DefaultMem  uint64
	DefaultCPUs uint64
	Sections    []Section
}

// Write writes img in the EIF layout with offsets, sizes and CRC filled in.
// It does not check that the sections make a bootable image; Measure does.
func Write(w io.Writer, img Image) error {
	if len(img.Sections) == 0 || len(img.Sections) > MaxSections {
		return errors.New("eif: 1..32 sections")
	}
	version := img.Version
	if version == 0 {
		version = maxVersion
	}
	be := binary.BigEndian
	hb := make([]byte, HeaderSize)
	copy(hb, Magic[:])
	be.PutUint16(hb[4:], version)
	be.PutUint16(hb[6:], img.Flags)
	be.PutUint64(hb[8:], img.DefaultMem)
	be.PutUint64(hb[16:], img.DefaultCPUs)
	be.PutUint16(hb[26:], uint16(len(img.Sections)))
	offset := uint64(HeaderSize)
	for i, s := range img.Sections {
		be.PutUint64(hb[28+8*i:], offset)
		be.PutUint64(hb[28+8*MaxSections+8*i:], uint64(len(s.Data)))
		offset += SectionHeaderSize + uint64(len(s.Data))
	}
	crc := crc32.NewIEEE()
	crc.Write(hb[:HeaderSize-4])
	var sections [][]byte
	for _, s := range img.Sections {
		sh := make([]byte, SectionHeaderSize)
		be.PutUint16(sh, s.Type)
		be.PutUint16(sh[2:], s.Flags)
		be.PutUint64(sh[4:], uint64(len(s.Data)))
		crc.Write(sh)
		crc.Write(s.Data)
		sections = append(sections, sh, s.Data)
	}
	be.PutUint32(hb[HeaderSize-4:], crc.Sum32())
	if _, err := w.Write(hb); err != nil {
		return err
	}
	for _, b := range sections {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
