// Package redisconf turns a REDIS_URL into Redis connection options for
// asynq and go-redis. Its errors name REDIS_URL and never contain the
// password.
//
// Accepted forms:
//
//	redis://[[user]:password@]host[:port][/db]             plain TCP
//	rediss://[[user]:password@]host[:port][/db]            TLS
//	redis-socket://[[user]:password@]/path/to/socket[?db=N] Unix socket
//	redis-sentinel://[[user]:password@]host1:port[,host2:port...][/db]?master=name[&master_username=u][&master_password=p]
//	redis-cluster://[[user]:password@]host1:port[,host2:port...]
//	rediss-cluster://...                                    cluster over TLS
//
// The port defaults to 6379 (for sentinel too: give Sentinel's 26379
// explicitly). The database defaults to 0; Redis Cluster has only database
// 0. For sentinel the password (and user name, if any) in the URL is the
// sentinels' (as asynq.ParseRedisURI reads it); the master's credentials
// are the query parameters master_username and master_password. Each form
// takes only the query parameters shown; any other is refused (a
// misspelt one, or ?db= where the database is the path, would otherwise be
// silently ignored). TLS uses the system's root certificates and verifies
// the host name (for rediss-cluster, the first host's). A password with
// characters such as @, : or / is percent-encoded (p@ss → p%40ss).
package redisconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// EnvVar is the variable errors are reported against.
const EnvVar = "REDIS_URL"

// Error is a REDIS_URL that cannot be used. Its text never contains the
// password.
type Error struct {
	// Reason describes the problem.
	Reason string
}

// Error returns "REDIS_URL: <reason>".
func (e *Error) Error() string { return EnvVar + ": " + e.Reason }

func fail(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Parse reads a Redis URL into asynq connection options
// (asynq.RedisClientOpt, asynq.RedisFailoverClientOpt or
// asynq.RedisClusterClientOpt).
func Parse(rawURL string) (asynq.RedisConnOpt, error) {
	if strings.TrimSpace(rawURL) == "" {
		return nil, fail("is empty; want a URL such as redis://127.0.0.1:6379/0")
	}
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, fail("must be a URL such as redis://host:6379/0 (no scheme found)")
	}
	// Multi-host URLs (sentinel, cluster) do not parse as URLs: take the
	// host list out and parse the rest.
	parseURL, hostList := rawURL, ""
	switch strings.ToLower(scheme) {
	case "redis-sentinel", "redis-cluster", "rediss-cluster":
		parseURL, hostList = splitHosts(rawURL, scheme)
	}
	u, err := url.Parse(parseURL)
	if err != nil {
		return nil, fail("is not a valid URL%s", safeDetail(err, rawURL))
	}
	var user, pass string
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
	}
	q := u.Query()
	if err := onlyParams(strings.ToLower(scheme), q); err != nil {
		return nil, err
	}
	switch strings.ToLower(scheme) {
	case "redis", "rediss":
		if u.Host == "" {
			return nil, fail("has no host")
		}
		if strings.Contains(u.Host, ",") {
			return nil, fail("names several hosts; use redis-cluster:// or redis-sentinel://")
		}
		db, err := pathDB(u)
		if err != nil {
			return nil, err
		}
		opt := asynq.RedisClientOpt{Addr: withPort(u.Host), Username: user, Password: pass, DB: db}
		if strings.EqualFold(scheme, "rediss") {
			opt.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		}
		return opt, nil
	case "redis-socket":
		if u.Path == "" {
			return nil, fail("redis-socket:// needs a socket path")
		}
		db := 0
		if s := q.Get("db"); s != "" {
			if db, err = strconv.Atoi(s); err != nil || db < 0 {
				return nil, fail("query parameter db must be a database number")
			}
		}
		return asynq.RedisClientOpt{Network: "unix", Addr: u.Path, Username: user, Password: pass, DB: db}, nil
	case "redis-sentinel":
		addrs, err := hosts(hostList)
		if err != nil {
			return nil, err
		}
		master := q.Get("master")
		if master == "" {
			return nil, fail("redis-sentinel:// needs ?master=<name>")
		}
		db, err := pathDB(u)
		if err != nil {
			return nil, err
		}
		return asynq.RedisFailoverClientOpt{
			MasterName: master, SentinelAddrs: addrs, SentinelUsername: user, SentinelPassword: pass,
			Username: q.Get("master_username"), Password: q.Get("master_password"), DB: db,
		}, nil
	case "redis-cluster", "rediss-cluster":
		addrs, err := hosts(hostList)
		if err != nil {
			return nil, err
		}
		if db, err := pathDB(u); err != nil {
			return nil, err
		} else if db != 0 {
			return nil, fail("Redis Cluster has only database 0")
		}
		opt := asynq.RedisClusterClientOpt{Addrs: addrs, Username: user, Password: pass}
		if strings.EqualFold(scheme, "rediss-cluster") {
			h, _, _ := net.SplitHostPort(addrs[0])
			opt.TLSConfig = &tls.Config{ServerName: h, MinVersion: tls.VersionTLS12}
		}
		return opt, nil
	}
	return nil, fail("unsupported scheme %q; use redis, rediss, redis-socket, redis-sentinel or redis-cluster", safeScheme(scheme))
}

// params are the query parameters each scheme takes.
var params = map[string][]string{
	"redis-socket":   {"db"},
	"redis-sentinel": {"master", "master_username", "master_password"},
}

// onlyParams refuses query parameters the scheme does not take. The error
// lists what is accepted and never echoes what was given (it could be a
// password).
func onlyParams(scheme string, q url.Values) error {
	allowed := params[scheme]
	for k := range q {
		if slices.Contains(allowed, k) {
			continue
		}
		if len(allowed) == 0 {
			hint := ""
			if scheme == "redis" || scheme == "rediss" {
				hint = fmt.Sprintf(" (the database is the path: %s://host:6379/3)", scheme)
			}
			return fail("%s:// takes no query parameters%s", scheme, hint)
		}
		return fail("%s:// takes only the query parameters %s", scheme, strings.Join(allowed, ", "))
	}
	return nil
}

// NewClient parses rawURL and returns a go-redis client for it (a
// *redis.Client, *redis.Client with failover, or *redis.ClusterClient). The
// caller closes it.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	opt, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	return UniversalClient(opt)
}

// UniversalClient returns the go-redis client for asynq connection
// options. The caller closes it.
func UniversalClient(opt asynq.RedisConnOpt) (redis.UniversalClient, error) {
	if opt == nil {
		return nil, errors.New("redisconf: nil connection options")
	}
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("redisconf: unsupported connection options %T", opt)
	}
	return c, nil
}

// Redact returns rawURL with its passwords (the user info's and a
// sentinel URL's master_password) replaced by "xxxxx", for logs. A URL that
// does not parse is reduced to its scheme.
func Redact(rawURL string) string {
	scheme, _, _ := strings.Cut(rawURL, "://")
	parseURL, hostList := rawURL, ""
	switch strings.ToLower(scheme) {
	case "redis-sentinel", "redis-cluster", "rediss-cluster":
		parseURL, hostList = splitHosts(rawURL, scheme)
	}
	u, err := url.Parse(parseURL)
	if err != nil {
		return safeScheme(scheme) + "://(unparsable)"
	}
	if q := u.Query(); q.Has("master_password") {
		q.Set("master_password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	out := u.Redacted()
	if hostList != "" {
		out = strings.Replace(out, "placeholder", hostList, 1)
	}
	return out
}

// splitHosts replaces the host list of a multi-host URL with a placeholder
// host and returns the URL and the host list.
func splitHosts(rawURL, scheme string) (string, string) {
	rest := rawURL[len(scheme)+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	userinfo, hostList := "", authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		userinfo, hostList = authority[:at+1], authority[at+1:]
	}
	return scheme + "://" + userinfo + "placeholder" + rest[end:], hostList
}

func pathDB(u *url.URL) (int, error) {
	p := strings.Trim(u.Path, "/")
	if p == "" {
		return 0, nil
	}
	db, err := strconv.Atoi(p)
	if err != nil || db < 0 {
		return 0, fail("the path must be a database number, like /0")
	}
	return db, nil
}

func hosts(h string) ([]string, error) {
	if h == "" {
		return nil, fail("has no host")
	}
	var addrs []string
	for _, a := range strings.Split(h, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fail("has an empty host in its host list")
		}
		addrs = append(addrs, withPort(a))
	}
	return addrs, nil
}

func withPort(h string) string {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return h
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), "6379")
}

// safeDetail returns ": <cause>" for a url.Parse error, unless the cause
// could contain part of the URL's user info.
func safeDetail(err error, rawURL string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			userinfo := rest[:at]
			for _, part := range strings.Split(userinfo, ":") {
				if part != "" && strings.Contains(msg, part) {
					return ""
				}
			}
		}
	}
	return " (" + msg + ")"
}

func safeScheme(s string) string {
	if len(s) > 20 || strings.ContainsAny(s, "@:/") {
		return "?"
	}
	return s
}

// defaultReadTimeout is go-redis's read timeout when the options give none.
const defaultReadTimeout = 3 * time.Second

// ReadTimeoutAtLeast returns opt with a read timeout of at least d (asynq's
// three connection option types; others are returned unchanged). A read
// timeout that is off (negative) stays off. Replicated acknowledgements
// need it: a WAIT may block for its timeout (see internal/redisack).
func ReadTimeoutAtLeast(opt asynq.RedisConnOpt, d time.Duration) asynq.RedisConnOpt {
	raise := func(rt time.Duration) time.Duration {
		switch {
		case rt < 0:
			return rt
		case rt == 0 && d <= defaultReadTimeout:
			return 0
		case rt > 0 && rt >= d:
			return rt
		}
		return d
	}
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		o.ReadTimeout = raise(o.ReadTimeout)
		return o
	case asynq.RedisFailoverClientOpt:
		o.ReadTimeout = raise(o.ReadTimeout)
		return o
	case asynq.RedisClusterClientOpt:
		o.ReadTimeout = raise(o.ReadTimeout)
		return o
	}
	return opt
}

// ClientWithBufferSize is opt.MakeRedisClient with read and write buffers
// of size bytes per connection instead of go-redis's 32 KiB each. asynq's
// connection options (single node, Sentinel, Cluster) do not carry buffer
// sizes, so their clients are built here with the same fields asynq's
// MakeRedisClient copies (TestClientWithBufferSize checks every field of
// the options is carried over); any other RedisConnOpt makes its client
// itself. A worker's commands and replies are small except the task
// messages it fetches, which a small buffer reads straight through, so at
// concurrency 50 (about 20 connections) 4 KiB buffers keep 1.2 MiB less
// resident at no measurable cost in CPU.
func ClientWithBufferSize(opt asynq.RedisConnOpt, size int) (redis.UniversalClient, error) {
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		return redis.NewClient(&redis.Options{
			Network: o.Network, Addr: o.Addr, Username: o.Username, Password: o.Password, DB: o.DB,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: o.PoolSize, TLSConfig: o.TLSConfig,
			ReadBufferSize: size, WriteBufferSize: size,
		}), nil
	case asynq.RedisFailoverClientOpt:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: o.MasterName, SentinelAddrs: o.SentinelAddrs,
			SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
			Username: o.Username, Password: o.Password, DB: o.DB,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			PoolSize: o.PoolSize, TLSConfig: o.TLSConfig,
			ReadBufferSize: size, WriteBufferSize: size,
		}), nil
	case asynq.RedisClusterClientOpt:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.Addrs, MaxRedirects: o.MaxRedirects, Username: o.Username, Password: o.Password,
			DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
			TLSConfig:      o.TLSConfig,
			ReadBufferSize: size, WriteBufferSize: size,
		}), nil
	}
	return UniversalClient(opt)
}
