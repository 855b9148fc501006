// Package wireschema is the text form of a task's wire shape: the grammar of the
// descriptions taskgen writes into every generated task.Def (Def.Wire), their canonical
// form and fingerprint (Def.Schema), and the rules that decide whether envelopes written
// with one description can be run by a worker built with another.
//
// The generator (package gen) writes descriptions from Go types; the runtime reads them.
// Both sides use this package, so that the two never disagree on what a description
// says.
//
// # Descriptions
//
// A description says what encoding/json writes for a value: the arguments of a task (the
// generated FArgs struct) are an object whose fields are the parameters, named by their
// JSON names (the parameter names):
//
//	{"name":string,"opts":*{"limit",omitempty:int,"tags":[]string},"to":string}
//
// The grammar, with no spaces anywhere outside quoted names and marshaler types:
//
//	desc    = object | basic | "bytes" | "time" | marshal
//	        | "*" desc | "[]" desc | "[" len "]" desc | "map[" key "]" desc | "rec(" depth ")"
//	object  = "{" [ field { "," field } ] "}"
//	field   = name [ ",omitempty" ] [ ",omitzero" ] [ ",string" ] ":" desc
//	name    = the JSON name as a Go string literal, exactly as strconv.Quote writes it
//	basic   = "bool" | "string" | "float32" | "float64"
//	        | "int" | "int8" | "int16" | "int32" | "int64"
//	        | "uint" | "uint8" | "uint16" | "uint32" | "uint64" | "uintptr"
//	marshal = "marshaler(" go-type ")"
//	key     = "string" | an integer basic | marshal
//	len     = a decimal number without leading zeros
//	depth   = a decimal number from 1, without leading zeros
//
// What each form means on the wire:
//
//   - an object is a JSON object of these fields: a struct as encoding/json writes it
//     (exported fields, JSON names, embedded fields promoted), with its json options;
//   - a basic type is a JSON boolean, string or number, named by Go kind: a named Go type
//     is described by what it is made of, so renaming or moving a Go type changes nothing
//     (byte is uint8, rune is int32, time.Duration is int64);
//   - bytes is a []byte, a base64 string; time is a time.Time, an RFC 3339 string;
//   - marshaler(T) is a type with its own encoding (MarshalJSON and UnmarshalJSON, or
//     MarshalText and UnmarshalText), T the Go type as go/types writes it with import
//     paths ("net/netip.Addr"): its wire form is whatever its methods write, so only its
//     name can be compared;
//   - *T is a T or null; []T a JSON array; [N]T a JSON array of N values; map[K]T a JSON
//     object whose keys are Ks written as strings;
//   - rec(N) refers back to the N-th enclosing object, pointer, slice, array or map,
//     counting outwards from 1: type Node struct{ Kids []Node } is {"Kids":[]rec(2)}
//     (1 is the slice, 2 the object). It makes recursive types finite without naming
//     them.
//
// # Canonical form and fingerprint
//
// The order of an object's fields is not part of the wire shape: encoding/json finds
// fields by name. The canonical form of a description (Canonical, Type.String) writes
// every object's fields sorted by name in byte order, so reordering parameters or struct
// fields gives the same canonical description. Def.Wire is the canonical description of
// the task's arguments, and Def.Schema its Fingerprint:
//
//	"v2:" + the first 16 hex digits of SHA-256(canonical description)
//
// Equal fingerprints mean equal descriptions (up to the odds of a 64-bit collision); a
// worker that sees a different fingerprint compares the descriptions with Compatible.
//
// History: "v1" fingerprints (taskgen before rolling-deploy checks) hashed the same
// grammar with fields in declaration order and rec(N) counting the enclosing named Go
// types rather than the enclosing composites. A v1 description was never stored, and the
// named types it counted are not visible in the text, so v1 descriptions cannot be
// compared; a v1 fingerprint is only ever equal or not.
//
// # Compatibility
//
// During a rolling deploy, workers built from the old code and from the new run side by
// side, and the queue holds envelopes written by both. Compare lists the differences
// between an old and a new description, Change.Breaking says which ones lose values, and
// Compatible is true when none does. The rules, like protobuf's and Avro's, are about
// decoding: encoding/json ignores a key the struct lacks and leaves a field the JSON
// lacks at its zero value.
//
//	change                                   kind          compatible  what happens to queued tasks
//	---------------------------------------  ------------  ----------  ----------------------------------------------
//	parameter or struct field added          Added         yes         older envelopes decode it as its zero value;
//	                                                                   an old worker ignores it
//	parameter or struct field removed        Removed       yes         its value in older envelopes is ignored
//	parameters or struct fields reordered    (none)        yes         nothing: the canonical form is the same
//	omitempty or omitzero added or removed   (none)        yes         a missing key decodes as the zero value it
//	                                                                   stands for
//	type changed (int → int64, T → *T,       TypeChanged   no          the value does not decode, or decodes to
//	  ,string added or removed, [3]T → [4]T,                           something else
//	  map key, another marshaler, ...)
//	field removed and one of an identical    Renamed       no          values under the old name are lost: the task
//	  type added in the same object                                    runs with the zero value instead
//
// A change inside a nested object follows the same rules at its path, whether the object
// is a parameter, a field, or sits in a slice, array, map or behind a pointer: a field
// added to the elements of a []Item is compatible, a field whose type changed there is
// not. A slice that became a pointer, or a map whose key type changed, is one
// TypeChanged of the whole value.
//
// Any change of a type is breaking, also where encoding/json would happen to decode the
// old values (int → int64, T → *T): whether it does depends on the values in the queue
// (an int64 beyond an int32, a null where a value was), and a type that changed usually
// changed meaning. omitempty and omitzero are the exception: they decide only whether a
// zero value is written, and a key left out decodes as that zero value (except that an
// empty slice or map left out comes back nil).
//
// Removal is compatible and a rename is not, although both lose the old values. A
// removal is intended loss: the code no longer wants the value. A rename is accidental
// loss: the code still wants the value, under another name, and every task queued before
// the deploy would run without it. Compare cannot know the intent, so within one object
// it takes a removed field and an added field of identical types (equal descriptions,
// json options aside, the string option included) for a rename, and reports one Renamed
// instead of the Removed and Added pair. Pairing is deterministic: each removed field, in
// name order, pairs with the first not yet paired added field of an identical type, in
// name order. What is not a rename ships in two deploys: add the new field in one,
// remove the old field in the next.
//
// Types compare by structure: rec(N) stands for the type it refers to, so a recursive
// type unrolled once is no change, and a change inside a recursive type is reported once,
// at its shortest path. Marshalers compare by name.
//
// # Paths
//
// Change.Path says where a change is:
//
//	""              the whole value (the argument object)
//	to              the top-level field (parameter) to
//	opts.limit      field limit of the object at opts
//	items[]         the elements of the slice or array at items
//	items[].sku     field sku of those elements
//	m[string]       the values of the map at m, by the description of its key
//	m[string].x     field x of those values
//
// Pointers add nothing: JSON has no pointers, so the field x of a *T at p is p.x. A name
// that is empty, or holds a space or any of . [ ] " or an unprintable character, is
// quoted as strconv.Quote quotes it: opts."a.b".
package wireschema
