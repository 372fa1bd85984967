// Package redisack makes the Redis writes cioq acknowledges wait until
// replicas have them: Redis's WAIT, sent on the connection that made the
// write.
//
// WAIT n t blocks until n replicas have acknowledged every write the
// connection it is sent on made before it, or t passed, and answers how
// many did. It counts the replication offset of that connection's last
// write, so it must follow the write on the same connection: sent on
// another connection of go-redis's pool it would wait for something else.
// The hook Install adds to a go-redis client guarantees that:
//
//   - a single command (asynq's enqueue script, a SET) is sent as a
//     pipeline of the command and WAIT, which go-redis writes on one
//     connection;
//   - a pipeline gets WAIT appended, the same way;
//   - a MULTI/EXEC transaction runs on a dedicated connection (a
//     *redis.Conn) followed by WAIT on it (go-redis cannot append a command
//     to a transaction's pipeline).
//
// With Sentinel the client's connections are the master's. With Redis
// Cluster the hook is installed on every node's client (OnNewNode), so WAIT
// goes to the node that took the write; a command redirected with MOVED or
// ASK is retried by go-redis on the right node, where that node's hook
// waits.
//
// The hook acts only on calls whose context carries With's settings, and
// there only on commands that may write (reads pass through untouched), so
// a client shared with asynq's server or the inspector costs those nothing.
// A write that fewer replicas than asked confirmed within the timeout
// fails with an *Error (errors.Is ErrNotReplicated): the write did happen
// on the master; what is unknown is whether it survives a failover.
// Hooks added to the client after this one see such a single command as a
// pipeline of it and WAIT.
package redisack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout is how long a write waits for its replicas when the
// settings give no timeout.
const DefaultTimeout = time.Second

// readMargin is how much of the client's read timeout a WAIT may not use:
// the reply must still arrive before go-redis gives up reading.
const readMargin = 500 * time.Millisecond

// ErrNotReplicated is what every *Error is (errors.Is): a write the master
// took but fewer replicas than required confirmed in time.
var ErrNotReplicated = errors.New("redis: write not confirmed by the required replicas")

// Error is a write that fewer replicas than required confirmed within the
// timeout. The master holds it; a failover before a replica has it loses it.
type Error struct {
	// Replicas is how many replicas confirmed the write (WAIT's answer).
	Replicas int
	// Want is how many were required.
	Want int
	// Timeout is how long WAIT waited.
	Timeout time.Duration
	// Cause, when WAIT itself failed after the write succeeded (the
	// connection dropped, or Redis unblocked it because the master became
	// a replica in a failover), is its error.
	Cause error
}

// Error says how many replicas confirmed the write.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("redis: write not confirmed by the %d replicas required: WAIT failed (%v); the write may exist, a failover may lose it", e.Want, e.Cause)
	}
	return fmt.Sprintf("redis: write confirmed by %d of the %d replicas required within %s (WAIT); the master holds it, a failover may lose it",
		e.Replicas, e.Want, e.Timeout)
}

// Is makes errors.Is(err, ErrNotReplicated) true.
func (e *Error) Is(target error) bool { return target == ErrNotReplicated }

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// Settings say how many replicas must confirm a write, and how long to
// wait for them.
type Settings struct {
	// Replicas is how many replicas must have the write (0: none, no WAIT).
	Replicas int
	// Timeout bounds each WAIT (DefaultTimeout when 0).
	Timeout time.Duration
}

// On reports whether the settings ask for replicas.
func (s Settings) On() bool { return s.Replicas > 0 }

func (s Settings) timeout() time.Duration {
	if s.Timeout <= 0 {
		return DefaultTimeout
	}
	return s.Timeout
}

// Check validates the settings: Replicas not negative, Timeout not
// negative and at least a millisecond (WAIT counts milliseconds).
func (s Settings) Check() error {
	switch {
	case s.Replicas < 0:
		return errors.New("replicas must not be negative")
	case s.Timeout < 0:
		return errors.New("timeout must not be negative")
	case s.Timeout > 0 && s.Timeout < time.Millisecond:
		return errors.New("timeout must be at least 1ms")
	}
	return nil
}

// ReadTimeout is the client read timeout the settings need: a WAIT may
// take Timeout, and its reply must arrive before go-redis stops reading.
func (s Settings) ReadTimeout() time.Duration { return s.timeout() + readMargin }

// CheckClient reports an error when rdb's read timeout is too short for
// the settings' WAIT (see ReadTimeout); rdb's options cannot be changed
// once it exists.
func (s Settings) CheckClient(rdb redis.UniversalClient) error {
	if !s.On() {
		return nil
	}
	var rt time.Duration
	switch c := rdb.(type) {
	case *redis.Client:
		rt = c.Options().ReadTimeout
	case *redis.ClusterClient:
		rt = c.Options().ReadTimeout
	default:
		return fmt.Errorf("replicated acknowledgements need a *redis.Client or *redis.ClusterClient, not %T", rdb)
	}
	if rt > 0 && rt < s.ReadTimeout() {
		return fmt.Errorf("the timeout %s needs a Redis read timeout of at least %s (the client's is %s)", s.timeout(), s.ReadTimeout(), rt)
	}
	return nil
}

// ctxKey carries a *state in a context.
type ctxKey struct{}

type state struct {
	Settings
	// inside: a hook further out handles this call's WAIT.
	inside bool
	rec    *recorder
}

// recorder keeps the first unconfirmed write of the calls made with one
// With context (a cluster pipeline's nodes report concurrently).
type recorder struct {
	mu  sync.Mutex
	err *Error
}

func (r *recorder) record(e *Error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = e
	}
	r.mu.Unlock()
}

// With returns ctx carrying s: writes made through a client with the hook
// (Install) with that context wait for s.Replicas replicas. Settings that
// ask for none return ctx unchanged.
func With(ctx context.Context, s Settings) context.Context {
	if !s.On() {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, &state{Settings: s, rec: &recorder{}})
}

// Unconfirmed returns the *Error of the first write made with ctx (a With
// context) that fewer replicas than required confirmed, nil if none. Use it
// where a library flattens the error it got into text (asynq does): the
// write was made all the same.
func Unconfirmed(ctx context.Context) error {
	st, ok := ctx.Value(ctxKey{}).(*state)
	if !ok {
		return nil
	}
	st.rec.mu.Lock()
	defer st.rec.mu.Unlock()
	if st.rec.err == nil {
		return nil
	}
	return st.rec.err
}

// From returns the settings ctx carries (zero when none).
func From(ctx context.Context) Settings {
	if st, ok := ctx.Value(ctxKey{}).(*state); ok {
		return st.Settings
	}
	return Settings{}
}

// active returns the settings of a call the hook must wait for.
func active(ctx context.Context) (*state, bool) {
	st, ok := ctx.Value(ctxKey{}).(*state)
	if !ok || st.inside || !st.On() {
		return nil, false
	}
	return st, true
}

func inside(ctx context.Context, st *state) context.Context {
	return context.WithValue(ctx, ctxKey{}, &state{Settings: st.Settings, inside: true, rec: st.rec})
}

// Install adds the hook to rdb: to a *redis.Client (plain or Sentinel)
// itself, to a *redis.ClusterClient's node clients as they are created.
// Install a fresh cluster client before its first command, or use
// InstallUsed. Installing twice is harmless (the outer hook waits, the
// inner passes).
func Install(rdb redis.UniversalClient) error {
	switch c := rdb.(type) {
	case *redis.Client:
		c.AddHook(&hook{rdb: c})
	case *redis.ClusterClient:
		c.OnNewNode(func(node *redis.Client) { node.AddHook(&hook{rdb: node}) })
	default:
		return fmt.Errorf("replicated acknowledgements need a *redis.Client or *redis.ClusterClient, not %T", rdb)
	}
	return nil
}

// InstallUsed is Install for a client that may have been used already: a
// cluster client's existing node clients get the hook too, which may ask
// the cluster for its layout (bounded by ctx; an error leaves them to be
// hooked when go-redis creates them again).
func InstallUsed(ctx context.Context, rdb redis.UniversalClient) error {
	if err := Install(rdb); err != nil {
		return err
	}
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	add := func(_ context.Context, node *redis.Client) error {
		node.AddHook(&hook{rdb: node})
		return nil
	}
	if err := c.ForEachMaster(ctx, add); err != nil {
		return err
	}
	return c.ForEachSlave(ctx, add)
}

// hook is the go-redis hook of one client (a node's, for a cluster).
type hook struct {
	rdb *redis.Client
}

func (h *hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		st, ok := active(ctx)
		if !ok || readOnly(cmd) {
			return next(ctx, cmd)
		}
		ictx := inside(ctx, st)
		wait := waitCmd(ictx, st)
		_, _ = h.rdb.Pipelined(ictx, func(p redis.Pipeliner) error {
			_ = p.Process(ictx, cmd)
			_ = p.Process(ictx, wait)
			return nil
		})
		if err := cmd.Err(); err != nil && err != redis.Nil {
			return err
		}
		if err := waited(wait, st); err != nil {
			return err
		}
		return cmd.Err()
	}
}

func (h *hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		st, ok := active(ctx)
		if !ok || allReadOnly(cmds) {
			return next(ctx, cmds)
		}
		if isTx(cmds) {
			return h.tx(ctx, st, cmds, next)
		}
		ictx := inside(ctx, st)
		wait := waitCmd(ictx, st)
		all := append(cmds[:len(cmds):len(cmds)], wait)
		err := next(ictx, all)
		if err != nil && firstErr(cmds) != nil {
			return err // the writes' own failure
		}
		if werr := waited(wait, st); werr != nil {
			return fail(cmds, werr)
		}
		return err
	}
}

// fail sets err on the writes of cmds that succeeded and returns it. A
// cluster client reports a pipeline's outcome from its commands' errors
// (it drops what a node's hook returns), so the commands must carry it.
func fail(cmds []redis.Cmder, err error) error {
	for _, c := range cmds {
		if e := c.Err(); !readOnly(c) && (e == nil || e == redis.Nil) {
			c.SetErr(err)
		}
	}
	return err
}

// tx runs a MULTI/EXEC transaction (cmds: MULTI, the commands, EXEC) on a
// connection of its own, then WAIT on that connection. A transaction
// refused with MOVED or ASK (a cluster slot that moved: nothing was
// written) is handed back to go-redis, which redirects it to the node
// whose hook then waits.
func (h *hook) tx(ctx context.Context, st *state, cmds []redis.Cmder, next redis.ProcessPipelineHook) error {
	inner := cmds[1 : len(cmds)-1]
	ictx := inside(ctx, st)
	conn := h.rdb.Conn()
	defer conn.Close()
	_, err := conn.TxPipelined(ictx, func(p redis.Pipeliner) error {
		for _, c := range inner {
			_ = p.Process(ictx, c)
		}
		return nil
	})
	if err != nil {
		if redirected(err) {
			return next(ctx, cmds)
		}
		return err
	}
	if err := waited(conn.Wait(ictx, st.Replicas, st.timeout()), st); err != nil {
		return fail(inner, err)
	}
	return nil
}

// waitCmd is WAIT for the settings' replicas and timeout (in a pipeline,
// which reads within the client's read timeout: see Settings.ReadTimeout).
func waitCmd(ctx context.Context, st *state) *redis.IntCmd {
	return redis.NewIntCmd(ctx, "wait", st.Replicas, st.timeout().Milliseconds())
}

// waited checks WAIT's answer.
func waited(wait *redis.IntCmd, st *state) error {
	n, err := wait.Result()
	if err == nil && int(n) >= st.Replicas {
		return nil
	}
	e := &Error{Replicas: int(n), Want: st.Replicas, Timeout: st.timeout(), Cause: err}
	st.rec.record(e)
	return e
}

func redirected(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "MOVED ") || strings.HasPrefix(s, "ASK ") || strings.Contains(s, "EXECABORT")
}

func isTx(cmds []redis.Cmder) bool {
	return len(cmds) >= 2 && cmds[0].Name() == "multi" && cmds[len(cmds)-1].Name() == "exec"
}

func firstErr(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && err != redis.Nil {
			return err
		}
	}
	return nil
}

func allReadOnly(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if !readOnly(c) {
			return false
		}
	}
	return true
}

// readOnly reports whether cmd never writes. Commands not listed are taken
// to write: a read taken for a write costs a WAIT that returns at once
// (its connection's offset is already replicated, or it waits with the
// write it follows), a write taken for a read would be acknowledged
// unreplicated.
func readOnly(cmd redis.Cmder) bool {
	return readOnlyCommands[cmd.Name()]
}

var readOnlyCommands = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range strings.Fields(`
		get mget exists type ttl pttl expiretime pexpiretime strlen getrange substr
		hget hgetall hmget hlen hexists hkeys hvals hscan hstrlen hrandfield
		lrange llen lindex lpos
		scard smembers sismember smismember srandmember sscan sinter sunion sdiff sintercard
		zcard zcount zrange zrangebyscore zrevrange zrevrangebyscore zrangebylex zrevrangebylex
		zrank zrevrank zscore zmscore zscan zlexcount zrandmember
		xlen xrange xrevrange xinfo
		scan keys dbsize randomkey dump object memory
		ping echo info time role lastsave hello auth select readonly readwrite asking
		client cluster command sentinel wait waitaof
		evalsha_ro eval_ro fcall_ro
		watch unwatch discard`) {
		m[n] = true
	}
	return m
}()
