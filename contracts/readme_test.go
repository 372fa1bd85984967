package contracts

import (
	"os"
	"strings"
	"testing"

	"github.com/cioq/cioq/customerio"
	"github.com/cioq/cioq/tasks"
)

// TestReadmeExampleLoads: the README's contracts file example loads, and
// says what the README says of it.
func TestReadmeExampleLoads(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### The contracts file")
	if i < 0 {
		t.Fatal("README.md has no contracts file section")
	}
	s = s[i:]
	start := strings.Index(s, "```json\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no ```json block in the contracts file section")
	}
	f, err := Parse([]byte(s[start+8 : start+8+end]))
	if err != nil {
		t.Fatalf("the README's example does not load: %v", err)
	}
	set, err := Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	_, err = set.Check("", tasks.SendEmail{To: "a@example.com", SendOptions: customerio.SendOptions{TransactionalMessageID: "password_reset"}})
	if err == nil || !strings.Contains(err.Error(), `message_data.reset_link: required by template "password_reset" (id 7), missing`) {
		t.Errorf("refusal = %v", err)
	}
}
