package redisconf

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetLogger routes go-redis's own log lines (sentinel failovers, dropped
// connections, pool trouble: go-redis writes them through one package-level
// logger, by default the standard library's log on stderr) to l, with
// component=go-redis, so they follow CIOQ_LOG_FORMAT and CIOQ_LOG_LEVEL
// like every other line. It affects every go-redis client of the process,
// asynq's included; call it once, at start-up.
func SetLogger(l *slog.Logger) {
	redis.SetLogger(NewLogger(l))
}

// Logger is go-redis's logging interface (redis.SetLogger) writing to a
// *slog.Logger. Lines that report a failure are warnings, the others
// (e.g. "sentinel: selected addr=…", "sentinel: new master=…") info.
// Passwords are scrubbed first: the userinfo of any URL and any
// password=… pair, which go-redis does not write today, but an address
// or an error text it quotes might carry.
type Logger struct {
	l *slog.Logger
}

// NewLogger returns a Logger writing to l (slog.Default() when nil).
func NewLogger(l *slog.Logger) *Logger {
	if l == nil {
		l = slog.Default()
	}
	return &Logger{l: l.With("component", "go-redis")}
}

// Printf logs one go-redis message.
func (g *Logger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	msg := ScrubLog(fmt.Sprintf(format, v...))
	level := slog.LevelInfo
	if isTrouble(msg) {
		level = slog.LevelWarn
	}
	if g.l.Enabled(ctx, level) {
		g.l.Log(ctx, level, msg)
	}
}

// troubleWords mark a go-redis message that reports something wrong.
var troubleWords = []string{"fail", "error", "panic", "discard", "unread", "unknown", "truncat", "ignore", "not found"}

func isTrouble(msg string) bool {
	m := strings.ToLower(msg)
	for _, w := range troubleWords {
		if strings.Contains(m, w) {
			return true
		}
	}
	return false
}

var (
	// userinfoPattern matches the user:password@ of a URL.
	userinfoPattern = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]*@`)
	// passwordPattern matches password=…, pass: … and the like.
	passwordPattern = regexp.MustCompile(`(?i)\b(password|passwd|pass|pwd|master_password)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,&;)]+)`)
)

// ScrubLog returns s with the userinfo of every URL and every password=…
// pair replaced by "xxxxx".
func ScrubLog(s string) string {
	s = userinfoPattern.ReplaceAllString(s, "${1}xxxxx@")
	return passwordPattern.ReplaceAllString(s, "${1}${2}xxxxx")
}
