package outbox

import (
	"os"
	"testing"
)

// The shipped outbox/schema.sql is the migration `cioq outbox migrate`
// runs, for the default schema (CIOQ_UPDATE_SCHEMA=1 rewrites it).
func TestSchemaFileIsTheMigration(t *testing.T) {
	want, err := MigrationSQL("")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("CIOQ_UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile("schema.sql", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if SchemaSQL != want {
		t.Errorf("outbox/schema.sql differs from MigrationSQL(\"\"): run CIOQ_UPDATE_SCHEMA=1 go test -run TestSchemaFileIsTheMigration ./outbox")
	}
}

func TestSchemaNames(t *testing.T) {
	for _, ok := range []string{"", "cioq", "app_outbox", "s1"} {
		if _, err := MigrationSQL(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"1s", "Cioq", "a-b", `x"; DROP TABLE t; --`, string(make([]byte, 64))} {
		if _, err := MigrationSQL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
