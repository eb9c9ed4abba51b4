package strictjson

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"unicode"
)

// A shape is what Decode's scanner needs to know of a Go type to hold
// object keys to exact field names: for a struct its fields by JSON name,
// for a map, slice or array its element. Everything else — interfaces,
// json.RawMessage and other types that decode themselves, scalars — is
// anyShape, under which keys are free (but still never equal under case
// folding).
type shape struct {
	kind   shapeKind
	elem   *shape            // shapeMap, shapeList
	fields map[string]*shape // shapeStruct: by exact JSON name
	folded map[string]string // shapeStruct: JSON name by its folded form
}

type shapeKind uint8

const (
	shapeAny shapeKind = iota
	shapeStruct
	shapeMap
	shapeList
)

var anyShape = &shape{kind: shapeAny}

// foldedName is the name of the field whose name folds to folded, or "".
func (s *shape) foldedName(folded []byte) string {
	return s.folded[string(folded)]
}

var (
	shapes            sync.Map // reflect.Type → *shape
	unmarshalerType   = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// shapeOf returns t's shape, built once per type.
func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	building := map[reflect.Type]*shape{}
	s := buildShape(t, building)
	for bt, bs := range building {
		shapes.LoadOrStore(bt, bs)
	}
	return s
}

func buildShape(t reflect.Type, building map[reflect.Type]*shape) *shape {
	if s, ok := building[t]; ok {
		return s // a recursive type: filled in by the caller up the stack
	}
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	if decodesItself(t) {
		return anyShape
	}
	switch t.Kind() {
	case reflect.Pointer:
		return buildShape(t.Elem(), building)
	case reflect.Map:
		s := &shape{kind: shapeMap}
		building[t] = s
		s.elem = buildShape(t.Elem(), building)
		return s
	case reflect.Slice, reflect.Array:
		s := &shape{kind: shapeList}
		building[t] = s
		s.elem = buildShape(t.Elem(), building)
		return s
	case reflect.Struct:
		s := &shape{kind: shapeStruct, fields: map[string]*shape{}, folded: map[string]string{}}
		building[t] = s
		for _, f := range jsonFields(t) {
			s.fields[f.name] = buildShape(f.typ, building)
			s.folded[string(appendFold(nil, []byte(f.name)))] = f.name
		}
		return s
	}
	return anyShape
}

// decodesItself reports whether encoding/json hands t's JSON to a method
// of t (or *t) instead of decoding it by reflection.
func decodesItself(t reflect.Type) bool {
	if t.Implements(unmarshalerType) || t.Implements(textUnmarshalType) {
		return true
	}
	if t.Kind() != reflect.Pointer {
		p := reflect.PointerTo(t)
		return p.Implements(unmarshalerType) || p.Implements(textUnmarshalType)
	}
	return false
}

type jsonField struct {
	name   string
	typ    reflect.Type
	depth  int
	tagged bool
}

// jsonFields lists the fields encoding/json decodes into a struct of type
// t, by the rules of its documentation: exported fields (and the exported
// fields of embedded structs, promoted) under their tag's name or their
// own; "-" omits a field; of fields with one name the shallowest wins, then
// the only tagged one, and a name still ambiguous names no field.
func jsonFields(t reflect.Type) []jsonField {
	type queued struct {
		typ   reflect.Type
		depth int
	}
	var all []jsonField
	visited := map[reflect.Type]bool{}
	next := []queued{{t, 0}}
	for len(next) > 0 {
		current := next
		next = nil
		count := map[reflect.Type]int{}
		for _, q := range current {
			count[q.typ]++
		}
		for _, q := range current {
			if visited[q.typ] {
				continue
			}
			visited[q.typ] = true
			for i := range q.typ.NumField() {
				sf := q.typ.Field(i)
				ft := sf.Type
				if sf.Anonymous {
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if !validTagName(name) {
					name = ""
				}
				if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
					next = append(next, queued{ft, q.depth + 1})
					continue
				}
				tagged := name != ""
				if name == "" {
					name = sf.Name
				}
				f := jsonField{name: name, typ: sf.Type, depth: q.depth, tagged: tagged}
				all = append(all, f)
				if count[q.typ] > 1 {
					all = append(all, f) // embedded twice at this depth: ambiguous
				}
			}
		}
	}
	byName := map[string][]jsonField{}
	var order []string
	for _, f := range all {
		if _, seen := byName[f.name]; !seen {
			order = append(order, f.name)
		}
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, name := range order {
		if f, ok := dominant(byName[name]); ok {
			out = append(out, f)
		}
	}
	return out
}

// dominant picks the field a name refers to, if one does.
func dominant(fields []jsonField) (jsonField, bool) {
	shallowest := fields[0].depth
	for _, f := range fields {
		shallowest = min(shallowest, f.depth)
	}
	var atDepth, tagged []jsonField
	for _, f := range fields {
		if f.depth == shallowest {
			atDepth = append(atDepth, f)
			if f.tagged {
				tagged = append(tagged, f)
			}
		}
	}
	switch {
	case len(atDepth) == 1:
		return atDepth[0], true
	case len(tagged) == 1:
		return tagged[0], true
	}
	return jsonField{}, false
}

// validTagName is encoding/json's test for a usable tag name.
func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// foldRune is the smallest rune of r's Unicode simple-folding orbit.
func foldRune(r rune) rune {
	smallest := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		smallest = min(smallest, f)
	}
	return smallest
}
