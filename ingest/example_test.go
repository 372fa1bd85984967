package ingest_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cioq/cioq/ingest"
)

// A custom source's mappings are dotted paths into the posted JSON.
func ExampleLookup() {
	var doc any
	json.Unmarshal([]byte(`{"customer":{"id":"c-1"},"items":[{"name":"Widget"}]}`), &doc)
	id, _ := ingest.Lookup(doc, "customer.id")
	item, _ := ingest.Lookup(doc, "items.0.name")
	_, ok := ingest.Lookup(doc, "items.1.name")
	fmt.Println(id, item, ok)
	// Output: c-1 Widget false
}

// ParseConfig refuses a configuration it does not fully understand, naming
// the entry.
func ExampleParseConfig() {
	_, err := ingest.ParseConfig(strings.NewReader(`{"sources":[
		{"name":"web","kind":"segment","write_key":"wk-1"},
		{"name":"web","kind":"segment","write_key":"wk-2"}]}`))
	fmt.Println(err)
	_, err = ingest.ParseConfig(strings.NewReader(`{"sources":[{"name":"web","kind":"segment","mode":"direct","write_key":"wk-1"}]}`))
	fmt.Println(err)
	// Output:
	// ingest config: sources[1] "web": name: duplicate source name
	// ingest config: sources[0] "web": mode: must be pipelines or track
}
