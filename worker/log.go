package worker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// AsynqLogger adapts a *slog.Logger to asynq's Logger interface (asynq has
// no slog adapter of its own). Messages are logged with component=asynq.
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

func (a *AsynqLogger) log(level slog.Level, args []any) {
	if !a.L.Enabled(context.Background(), level) {
		return
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
