// Probe json-reflect: encoding/json (reflection throughout) round-trips a struct with
// tags, embedding, pointers, maps, slices, time and a custom marshaler, both into the
// same type and through interface{}; the JSON it prints must match exactly.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"
)

type Level int

func (l Level) MarshalText() ([]byte, error) { return []byte(strings.Repeat("*", int(l))), nil }

func (l *Level) UnmarshalText(b []byte) error {
	*l = Level(len(b))
	return nil
}

type Meta struct {
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

type Item struct {
	Meta
	Name     string           `json:"name"`
	Count    *int             `json:"count"`
	Ratio    float64          `json:"ratio"`
	Tags     []string         `json:"tags"`
	Levels   map[string]Level `json:"levels"`
	Children []*Item          `json:"children,omitempty"`
	Skipped  string           `json:"-"`
	Empty    string           `json:"empty,omitempty"`
}

func main() {
	three := 3
	in := Item{
		Meta:   Meta{Created: time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC), Labels: map[string]string{"b": "2", "a": "1"}},
		Name:   "root",
		Count:  &three,
		Ratio:  0.25,
		Tags:   []string{"x", "y"},
		Levels: map[string]Level{"low": 1, "high": 3},
		Children: []*Item{
			{Name: "leaf", Tags: []string{}, Levels: map[string]Level{}},
		},
	}
	data, err := json.Marshal(in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "marshal: %v\n", err)
		os.Exit(1)
	}
	var back Item
	if err := json.Unmarshal(data, &back); err != nil {
		fmt.Fprintf(os.Stderr, "unmarshal: %v\n", err)
		os.Exit(1)
	}
	if !reflect.DeepEqual(in, back) {
		fmt.Fprintf(os.Stderr, "round trip changed the value:\n%#v\n%#v\n", in, back)
		os.Exit(1)
	}
	var generic interface{}
	if err := json.Unmarshal(data, &generic); err != nil {
		fmt.Fprintf(os.Stderr, "unmarshal into interface{}: %v\n", err)
		os.Exit(1)
	}
	again, err := json.Marshal(generic)
	if err != nil {
		fmt.Fprintf(os.Stderr, "marshal interface{}: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("%s\n", again)
}
