package main

import (
	"flag"
	"net"
	"net/http"
	"strings"
)

// Environment variables of the dashboard's request checks (serve and the
// demo; serve's --trusted-origins and --allowed-hosts override them).
const (
	envDashboardTrustedOrigins = "CIOQ_DASHBOARD_TRUSTED_ORIGINS"
	envDashboardAllowedHosts   = "CIOQ_DASHBOARD_ALLOWED_HOSTS"
)

// dashboardNetwork are the dashboard's trusted origins and allowed hosts.
type dashboardNetwork struct {
	origins, hosts []string
}

// readDashboardNetwork reads the trusted origins and allowed hosts from
// the flags trusted-origins and allowed-hosts of fs when given (fs may be
// nil), else from the environment, and checks them: an error names the
// flag or variable.
func readDashboardNetwork(getenv func(string) string, fs *flag.FlagSet) (dashboardNetwork, error) {
	value := func(flagName, env string) (string, string) {
		if fs != nil && flagSet(fs, flagName) {
			return fs.Lookup(flagName).Value.String(), "--" + flagName
		}
		return getenv(env), env
	}
	var n dashboardNetwork
	v, name := value("trusted-origins", envDashboardTrustedOrigins)
	for _, o := range splitList(v) {
		o = strings.TrimSuffix(o, "/")
		if err := http.NewCrossOriginProtection().AddTrustedOrigin(o); err != nil {
			return n, usageErrorf("%s: %v (want scheme://host[:port], e.g. https://cioq.example.com)", name, err)
		}
		n.origins = append(n.origins, o)
	}
	v, name = value("allowed-hosts", envDashboardAllowedHosts)
	for _, h := range splitList(v) {
		if strings.ContainsAny(h, ":/[]@") {
			return n, usageErrorf("%s: %q: want a host name without scheme, port or path (IP addresses and localhost are always allowed)", name, h)
		}
		n.hosts = append(n.hosts, h)
	}
	return n, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// loopbackAddr reports whether the listen address addr accepts
// connections from this machine only (127.0.0.1:8080, [::1]:8080,
// localhost:8080), where a browser's DNS-rebinding page is the one remote
// caller left.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
