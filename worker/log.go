package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// AsynqLogger adapts a *slog.Logger to asynq's Logger interface (asynq has
// no slog adapter of its own). Messages are logged with component=asynq,
// except asynq's "Retry exhausted for task id=…" warning, which it logs
// whenever it archives a task: the worker archives a task only after it
// recorded it in the dead-letter store and logged "task dead-lettered"
// with the class and reason, so asynq's line (logged even for a permanent
// failure on the first attempt) would only mislead. Every other asynq
// message is kept.
type AsynqLogger struct {
	// L receives the messages.
	L *slog.Logger
}

// NewAsynqLogger returns an asynq Logger writing to l (slog.Default() when nil).
func NewAsynqLogger(l *slog.Logger) *AsynqLogger {
	if l == nil {
		l = slog.Default()
	}
	return &AsynqLogger{L: l.With("component", "asynq")}
}

// retryExhaustedPrefix starts the warning asynq's processor logs when it
// archives a task (processor.go, handleFailedMessage:
// Warnf("Retry exhausted for task id=%s", msg.ID)), which reaches the
// adapter as one formatted string.
const retryExhaustedPrefix = "Retry exhausted for task id="

func (a *AsynqLogger) log(level slog.Level, args []any) {
	if !a.L.Enabled(context.Background(), level) {
		return
	}
	if level == slog.LevelWarn && len(args) == 1 {
		if s, ok := args[0].(string); ok && strings.HasPrefix(s, retryExhaustedPrefix) {
			return
		}
	}
	a.L.Log(context.Background(), level, fmt.Sprint(args...))
}

// Debug logs at slog.LevelDebug.
func (a *AsynqLogger) Debug(args ...any) { a.log(slog.LevelDebug, args) }

// Info logs at slog.LevelInfo.
func (a *AsynqLogger) Info(args ...any) { a.log(slog.LevelInfo, args) }

// Warn logs at slog.LevelWarn.
func (a *AsynqLogger) Warn(args ...any) { a.log(slog.LevelWarn, args) }

// Error logs at slog.LevelError.
func (a *AsynqLogger) Error(args ...any) { a.log(slog.LevelError, args) }

// Fatal logs at slog.LevelError and exits with status 1, as asynq's
// Logger contract requires.
func (a *AsynqLogger) Fatal(args ...any) {
	a.log(slog.LevelError, args)
	os.Exit(1)
}
