package attestation

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Releases is releases.json: the enclave images a deployment allows, which
// clients accept, KMS key policies name and enclaves accept as peers. One
// strict parser, ParseReleases, is used by every reader:
//
//	{"releases": [
//	  {"version": "v1.2.3",
//	   "pcr0": HEX96, "pcr1": HEX96, "pcr2": HEX96,
//	   "pcr3": HEX96, "pcr4": HEX96, "pcr8": HEX96,
//	   "eif_sha256": HEX64,
//	   "not_before": RFC3339, "not_after": RFC3339,
//	   "match": ["pcr0", "pcr1", "pcr2"]}, …]}
//
// version, pcr0, pcr1, pcr2, eif_sha256 and not_before are required; pcr3
// and pcr4 (an instance's role and id), pcr8 (a signed image), not_after
// and match are optional. match names the PCRs a policy pins for the
// release: by default every PCR given but pcr8 (the image's measurements);
// ["pcr8"] accepts any image signed with the release's certificate, and
// ["pcr0", "pcr8"] that image only when it is also signed. Versions are
// unique; hex is lowercase.
type Releases struct {
	Releases []Release
}

// Release is one allowed image.
type Release struct {
	Version string
	// PCRs by index: 0, 1 and 2; 3, 4 and 8 when given. 48 bytes each.
	PCRs      map[int][]byte
	EIFSHA256 []byte
	NotBefore time.Time
	// NotAfter is zero when the release does not expire.
	NotAfter time.Time
	// Match are the PCR indexes a policy pins, ascending.
	Match []int
}

var releasePCRs = map[string]int{"pcr0": 0, "pcr1": 1, "pcr2": 2, "pcr3": 3, "pcr4": 4, "pcr8": 8}

// Bounds of releases.json.
const (
	MaxReleasesSize = 256 << 10
	maxReleases     = 64
)

// ParseReleases parses releases.json strictly: UTF-8 JSON of at most
// MaxReleasesSize bytes; the object {"releases": [...]} and nothing else;
// each release an object of exactly the keys Releases documents, each
// once, with the required ones present; PCRs 96 lowercase hex characters;
// times RFC 3339; no two releases of one version. Errors wrap ErrManifest.
func ParseReleases(b []byte) (*Releases, error) {
	dec, err := objectDecoder(b, MaxReleasesSize)
	if err != nil {
		return nil, err
	}
	key, err := stringToken(dec, "key")
	if err != nil {
		return nil, err
	}
	if key != "releases" {
		return nil, fmt.Errorf("%w: unknown key %q, want only \"releases\"", ErrManifest, truncate(key))
	}
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	rs := &Releases{}
	versions := map[string]bool{}
	for dec.More() {
		if len(rs.Releases) == maxReleases {
			return nil, fmt.Errorf("%w: more than %d releases", ErrManifest, maxReleases)
		}
		r, err := parseRelease(dec)
		if err != nil {
			return nil, fmt.Errorf("%w (release %d)", err, len(rs.Releases))
		}
		if versions[r.Version] {
			return nil, fmt.Errorf("%w: version %q appears twice", ErrManifest, truncate(r.Version))
		}
		versions[r.Version] = true
		rs.Releases = append(rs.Releases, *r)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return nil, err
	}
	if err := endOfObject(dec); err != nil {
		return nil, err
	}
	return rs, nil
}

func parseRelease(dec *json.Decoder) (*Release, error) {
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	r := &Release{PCRs: map[int][]byte{}}
	seen := map[string]bool{}
	var match []string
	for dec.More() {
		key, err := nextKey(dec, seen)
		if err != nil {
			return nil, err
		}
		switch index, isPCR := releasePCRs[key]; {
		case isPCR:
			r.PCRs[index], err = hexValue(dec, key, pcrLenSHA384)
		case key == "version":
			r.Version, err = stringToken(dec, key)
			if err == nil && (r.Version == "" || len(r.Version) > maxManifestVersion) {
				err = fmt.Errorf("%w: version must be 1..%d bytes", ErrManifest, maxManifestVersion)
			}
		case key == "eif_sha256":
			r.EIFSHA256, err = hexValue(dec, key, 32)
		case key == "not_before":
			r.NotBefore, err = timeValue(dec, key)
		case key == "not_after":
			r.NotAfter, err = timeValue(dec, key)
		case key == "match":
			match, err = matchValue(dec)
		default:
			err = fmt.Errorf("%w: unknown key %q", ErrManifest, truncate(key))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	for _, key := range []string{"version", "pcr0", "pcr1", "pcr2", "eif_sha256", "not_before"} {
		if !seen[key] {
			return nil, fmt.Errorf("%w: %s is missing", ErrManifest, key)
		}
	}
	if match == nil {
		for i := range r.PCRs {
			if i != 8 {
				r.Match = append(r.Match, i)
			}
		}
	} else {
		for _, key := range match {
			i := releasePCRs[key]
			if _, ok := r.PCRs[i]; !ok {
				return nil, fmt.Errorf("%w: match names %s, which the release does not give", ErrManifest, key)
			}
			r.Match = append(r.Match, i)
		}
	}
	slices.Sort(r.Match)
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

func timeValue(dec *json.Decoder, what string) (time.Time, error) {
	s, err := stringToken(dec, what)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not an RFC 3339 time", ErrManifest, what)
	}
	// The zero time reads as "absent" everywhere; years before 1970 are
	// no release's.
	if t.Year() < 1970 {
		return time.Time{}, fmt.Errorf("%w: %s is before 1970", ErrManifest, what)
	}
	return t, nil
}

func matchValue(dec *json.Decoder) ([]string, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	out := []string{}
	for dec.More() {
		key, err := stringToken(dec, "match")
		if err != nil {
			return nil, err
		}
		if _, ok := releasePCRs[key]; !ok || slices.Contains(out, key) {
			return nil, fmt.Errorf("%w: match holds %q: want distinct pcr0, pcr1, pcr2, pcr3, pcr4, pcr8", ErrManifest, truncate(key))
		}
		out = append(out, key)
	}
	return out, expectDelim(dec, ']')
}

// Validate holds a release built in code to what ParseReleases accepts:
// every writer of policies from releases (KMS key policies) calls it.
func (r *Release) Validate() error { return r.check() }

// check holds a release to what ParseReleases accepts.
func (r *Release) check() error {
	if r.Version == "" || len(r.Version) > maxManifestVersion || !utf8.ValidString(r.Version) ||
		strings.ContainsFunc(r.Version, func(c rune) bool { return unicode.IsControl(c) || c == utf8.RuneError }) {
		return fmt.Errorf("%w: version must be 1..%d bytes of printable UTF-8", ErrManifest, maxManifestVersion)
	}
	for _, i := range []int{0, 1, 2} {
		if _, ok := r.PCRs[i]; !ok {
			return fmt.Errorf("%w: PCR%d is missing", ErrManifest, i)
		}
	}
	for i, v := range r.PCRs {
		if _, ok := releasePCRs[fmt.Sprintf("pcr%d", i)]; !ok || len(v) != pcrLenSHA384 {
			return fmt.Errorf("%w: PCR%d of %d bytes cannot be in a release", ErrManifest, i, len(v))
		}
		if (i <= 2 || i == 8) && bytes.Equal(v, zeroPCR[:]) {
			return fmt.Errorf("%w: release %q gives PCR%d as zeros, which %s reports", ErrManifest, truncate(r.Version), i, zerosMean(i))
		}
	}
	if len(r.EIFSHA256) != 32 {
		return fmt.Errorf("%w: eif_sha256 of %d bytes", ErrManifest, len(r.EIFSHA256))
	}
	if r.NotBefore.IsZero() {
		return fmt.Errorf("%w: not_before is missing", ErrManifest)
	}
	m := r.Measurement()
	if err := m.check(); err != nil {
		return fmt.Errorf("%w: release %q: %v", ErrManifest, truncate(r.Version), err)
	}
	return nil
}

// Measurement is what a policy allows for the release: the PCRs Match
// names, in the release's window.
func (r *Release) Measurement() Measurement {
	m := Measurement{Name: r.Version, PCRs: map[int][]byte{}, NotBefore: r.NotBefore, NotAfter: r.NotAfter}
	for _, i := range r.Match {
		if v, ok := r.PCRs[i]; ok {
			m.PCRs[i] = v
		}
	}
	return m
}

// Measurements are the allowed measurements of every release, for
// Policy.Allowed.
func (rs *Releases) Measurements() []Measurement {
	out := make([]Measurement, 0, len(rs.Releases))
	for i := range rs.Releases {
		out = append(out, rs.Releases[i].Measurement())
	}
	return out
}

// Marshal writes releases.json as ParseReleases reads it, keys in a fixed
// order, indented; it refuses what ParseReleases would refuse.
func (rs *Releases) Marshal() ([]byte, error) {
	type wire struct {
		Version   string   `json:"version"`
		PCR0      string   `json:"pcr0"`
		PCR1      string   `json:"pcr1"`
		PCR2      string   `json:"pcr2"`
		PCR3      string   `json:"pcr3,omitempty"`
		PCR4      string   `json:"pcr4,omitempty"`
		PCR8      string   `json:"pcr8,omitempty"`
		EIF       string   `json:"eif_sha256"`
		NotBefore string   `json:"not_before"`
		NotAfter  string   `json:"not_after,omitempty"`
		Match     []string `json:"match"`
	}
	out := struct {
		Releases []wire `json:"releases"`
	}{Releases: []wire{}}
	versions := map[string]bool{}
	if len(rs.Releases) > maxReleases {
		return nil, fmt.Errorf("%w: more than %d releases", ErrManifest, maxReleases)
	}
	for i := range rs.Releases {
		r := &rs.Releases[i]
		if err := r.check(); err != nil {
			return nil, err
		}
		if versions[r.Version] {
			return nil, fmt.Errorf("%w: version %q appears twice", ErrManifest, truncate(r.Version))
		}
		versions[r.Version] = true
		w := wire{Version: r.Version, EIF: hex.EncodeToString(r.EIFSHA256), NotBefore: r.NotBefore.UTC().Format(time.RFC3339)}
		pcr := func(i int) string { return hex.EncodeToString(r.PCRs[i]) }
		w.PCR0, w.PCR1, w.PCR2, w.PCR3, w.PCR4, w.PCR8 = pcr(0), pcr(1), pcr(2), pcr(3), pcr(4), pcr(8)
		if !r.NotAfter.IsZero() {
			w.NotAfter = r.NotAfter.UTC().Format(time.RFC3339)
		}
		for _, idx := range slices.Sorted(maps.Keys(setOf(r.Match))) {
			w.Match = append(w.Match, fmt.Sprintf("pcr%d", idx))
		}
		out.Releases = append(out.Releases, w)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func setOf(xs []int) map[int]bool {
	m := make(map[int]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
