// Package batch coalesces Track v2 operations submitted by concurrently
// running task handlers into POST /api/v2/batch requests, and hands each
// handler the fate of its own operation.
//
// A handler calls Do with one customerio.Operation; Do blocks until the
// request carrying it is answered. Operations arriving close together (within
// Config.Linger of the first one of a batch, or while all MaxInFlight
// requests are busy) share one request, up to MaxOps operations and MaxBytes
// bytes of encoded body ({"batch":[...]}, counted exactly by encoding each
// operation once in Do).
//
// What Do returns:
//
//   - nil: Customer.io accepted the operation.
//   - a *customerio.APIError of ClassPermanent, StatusCode 400, naming
//     Customer.io's field and message, when a 207 (or a 200 carrying errors)
//     listed this operation's batch_index, and every error listed named an
//     operation of the request. Other operations of the same request are
//     unaffected.
//   - the whole-request error, as SendFunc returned it (for example a
//     transient *customerio.APIError for a 503 or a timeout, or a 401),
//     when the request failed as a whole: every operation of that request
//     gets it, and each task retries on its own.
//   - a transient *customerio.APIError matching ErrUnattributed, with the
//     answer's status and message, when the request failed in a way that
//     names no operation: a permanent whole-request error (a 400 or 413
//     refusing the batch, a 207 without a readable errors list, an item
//     error without a batch_index), or an item error whose batch_index is
//     outside the batch. Every operation of the request gets it, none is
//     reported accepted and none is blamed; the caller sends each again on
//     its own, outside a batch, so that the one Customer.io refuses is
//     refused alone (the worker does: see worker.Batching).
//   - a *customerio.ValidationError, without sending, when the operation is
//     invalid (Config.Validate), encodes to MaxItemBytes or more, or alone
//     would exceed MaxBytes; in the last two cases the error also matches
//     ErrTooLarge, so the caller can deliver the operation another way.
//     Validating each operation before batching keeps one bad operation from
//     failing the whole request.
//   - a transient *customerio.APIError wrapping ErrSendPanicked when
//     SendFunc panicked; the panic is recovered and logged, the Batcher
//     stays usable.
//   - ctx's error when ctx ended first. The operation may or may not have
//     been sent (it is withdrawn if its request has not started yet). Track
//     events carry ULID ids, so a retry that resends it is harmless.
//   - ErrClosed after Close.
//
// DoAll submits several operations at once (the operations of one
// multi-operation task), and Prepare with DoPrepared does the same for
// operations encoded ahead of their submission. A Batcher made by NewRaw
// keeps only each operation's JSON, so what the operations were made of is
// free while they wait for their requests and answers: the worker's, whose
// send is (*customerio.Client).BatchEncoded.
//
// Why not asynq's group aggregation: in asynq v0.26 it loses per-item
// retries, may re-send a whole batch after a crash, runs at most one batch
// per group per check and crashes the process when the aggregator panics.
// Here each task stays an ordinary asynq task with its own retries; only the
// HTTP request is shared.
package batch
