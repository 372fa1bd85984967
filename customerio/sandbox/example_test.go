package sandbox_test

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cioq/cioq/customerio/sandbox"
)

// A test starts a sandbox, points a client at TrackURL/AppURL/PipelinesURL
// and reads the resulting state.
func Example() {
	sb, err := sandbox.Start("", sandbox.Config{})
	if err != nil {
		panic(err)
	}
	defer sb.Close()

	req, _ := http.NewRequest("PUT", sb.TrackURL()+"/api/v1/customers/a+b@c.com%2Fx%20y", strings.NewReader(`{"plan":"pro"}`))
	req.SetBasicAuth(sandbox.DefaultSiteID, sandbox.DefaultTrackAPIKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	res.Body.Close()

	p, _ := sb.Person("a+b@c.com/x y")
	fmt.Println(res.StatusCode, p.ID, p.Attributes["plan"])

	// The next two Track requests answer 503, and every Track request is
	// 50 ms slower until that fault is removed.
	sb.AddFault(sandbox.GroupTrack, sandbox.Fault{Status: 503, Times: 2})
	slow := sb.AddFault(sandbox.GroupTrack, sandbox.Fault{Latency: 50 * time.Millisecond})
	fmt.Println(len(sb.Faults()[sandbox.GroupTrack]))
	sb.RemoveFault(sandbox.GroupTrack, slow)
	fmt.Println(len(sb.Faults()[sandbox.GroupTrack]))
	// Output:
	// 200 a+b@c.com/x y pro
	// 2
	// 1
}
