package wireschema_test

import (
	"fmt"

	"github.com/taskgen/taskgen/internal/wireschema"
)

// The canonical form sorts fields by name, so reordering parameters or struct fields
// changes neither the description nor its fingerprint.
func ExampleCanonical() {
	a, _ := wireschema.Canonical(`{"to":string,"name":string}`)
	b, _ := wireschema.Canonical(`{"name":string,"to":string}`)
	fmt.Println(a)
	fmt.Println(wireschema.Fingerprint(a) == wireschema.Fingerprint(b))
	// Output:
	// {"name":string,"to":string}
	// true
}

func ExampleParse_error() {
	_, err := wireschema.Parse(`{"to":str}`)
	fmt.Println(err)
	// Output:
	// wire description: offset 6: unknown type "str": want a type: an object {...}, a basic type such as string or int64, bytes, time, marshaler(T), *T, []T, [N]T, map[K]T or rec(N)
}

// A worker that finds an envelope of another fingerprint compares the two descriptions:
// a field added is compatible, a type changed or a probable rename is not.
func ExampleCompare() {
	old, _ := wireschema.Parse(`{"opts":{"limit":int},"to":string}`)
	new, _ := wireschema.Parse(`{"cc":[]string,"opts":{"limit":int64},"recipient":string}`)
	for _, c := range wireschema.Compare(old, new) {
		fmt.Printf("%s (breaking: %v)\n", c, c.Breaking())
	}
	fmt.Println("compatible:", wireschema.Compatible(old, new))
	// Output:
	// cc added ([]string) (breaking: false)
	// opts.limit changed type from int to int64 (breaking: true)
	// to probably renamed to recipient (same type string) (breaking: true)
	// compatible: false
}

func ExampleCompatible() {
	old, _ := wireschema.Parse(`{"items":[]{"sku":string},"note":string}`)
	new, _ := wireschema.Parse(`{"items":[]{"qty":int,"sku":string}}`)
	fmt.Println(wireschema.Compatible(old, new))
	// Output:
	// true
}
