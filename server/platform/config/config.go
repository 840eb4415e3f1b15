// Package config holds the one rule every service follows for its Config:
// a zero field takes the value DefaultConfig() gives it. A field whose zero
// would be a real choice ("no cooldown") spells that choice as a non-zero
// value the service documents (canvas.NoCooldown).
package config

import "reflect"

// FillZero sets every zero exported field of *cfg to def's value.
func FillZero[T any](cfg *T, def T) {
	v, d := reflect.ValueOf(cfg).Elem(), reflect.ValueOf(def)
	if v.Kind() != reflect.Struct {
		panic("config.FillZero: not a struct")
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if f.CanSet() && f.IsZero() {
			f.Set(d.Field(i))
		}
	}
}
