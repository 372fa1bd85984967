// Package importer is `cioq import`: it streams a CSV or JSON lines file
// of people, events or objects into cioq's queue as multi-operation tasks
// (producer.EnqueueBatch), with memory bounded independently of the file's
// size, a checkpoint to resume an interrupted import without duplicates,
// and a rejects file for the rows that cannot be enqueued.
//
// # Rows
//
// A CSV file has a header row; each further row is one operation of the
// import's type (cio:identify by default, cio:track, cio:object_upsert),
// its columns mapped as a Mapping says. A JSON lines file has one
// operation per line: the payload of the import's type, or, with no type
// given, {"type": "cio:...", "payload": {...}} (any batchable type).
// Blank lines are skipped.
//
// A row that does not make a valid operation (a cell of the wrong kind, a
// missing identifier, an attribute over Customer.io's limits, text that is
// not UTF-8) is rejected: written to the rejects file with its line number
// and the reason (naming the column or field, never quoting the value),
// and the import goes on. With Strict every row is checked first (the
// file is read twice) and nothing is enqueued if one is rejected.
//
// # No duplicates
//
// Rows are enqueued in chunks of BatchSize operations (one cio:batch task
// each, as one Track v2 request delivers them). Each chunk is enqueued
// under an idempotency key made of the file's identity and the chunk's
// first line, so enqueueing it again (after a crash between the enqueue
// and the checkpoint) enqueues nothing while asynq keeps the task (24 h
// after it is delivered). Events without an id get one derived from the
// file's identity and the row's line, so even an import run again later
// sends the same event ids, which Customer.io drops as repeats.
//
// # Checkpoint
//
// After each chunk, the checkpoint file (JSON, written to a temporary
// file and renamed) records where reading goes on (byte offset and line),
// the counts so far and the rejects file's length. Resume checks that the
// file, type, mapping and batch size are the same, truncates the rejects
// file to its recorded length, seeks to the offset and goes on. A
// finished import's checkpoint says so: it is not run again.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oklog/ulid/v2"

	"github.com/cioq/cioq/producer"
	"github.com/cioq/cioq/tasks"
)

// Formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// maxLineBytes bounds one row.
const maxLineBytes = 4 << 20

// Enqueuer is what an import enqueues with: *producer.Client.
type Enqueuer interface {
	EnqueueBatch(ctx context.Context, ops []tasks.Payload, opts ...producer.EnqueueOption) (producer.BatchReceipt, error)
}

// Options configure an import.
type Options struct {
	// Path is the file to import ("-" = In, which cannot be resumed).
	Path string
	In   io.Reader
	// Format is FormatCSV or FormatJSONL (default: from Path's extension,
	// .csv or else JSON lines).
	Format string
	// Type is the operations' task type: for CSV cio:identify (default),
	// cio:track or cio:object_upsert; for JSON lines any batchable type,
	// or "" for lines that name their own ({"type","payload"}).
	Type string
	// Mapping maps CSV columns (empty: see Mapping). MappingSpec is its
	// text, part of the import's identity.
	Mapping     Mapping
	MappingSpec string
	// BatchSize is the operations per chunk (cio:batch task), default 500.
	BatchSize int
	// EnqueueOptions apply to every task (workspace, queue).
	EnqueueOptions []producer.EnqueueOption
	// Workspace names the workspace (part of the import's identity).
	Workspace string
	// Check, when set, is run on every operation after it validated; an
	// error rejects the row.
	Check func(tasks.Payload) error
	// RejectsPath is the rejects file (default Path + ".rejects.jsonl").
	RejectsPath string
	// Strict stops the import at the first rejected row.
	Strict bool
	// CheckpointPath is the checkpoint (default Path + ".checkpoint";
	// none for "-").
	CheckpointPath string
	// Resume goes on from the checkpoint.
	Resume bool
	// Progress, when set, is called after every chunk.
	Progress func(Progress)
}

// Progress is an import's counts so far.
type Progress struct {
	// Rows read (rejected ones included), enqueued operations, rejected
	// rows, operations refused as duplicates (enqueued before under the
	// same key), tasks enqueued.
	Rows, Enqueued, Rejected, Duplicates, Tasks int64
	// Offset is the bytes of the file consumed, Size its size (0 for a
	// stream); Line the last line read.
	Offset, Size, Line int64
}

// Summary is the outcome of an import.
type Summary struct {
	Progress
	// Resumed: the import went on from a checkpoint; its counts include
	// the earlier runs'.
	Resumed bool
	// Done: the checkpoint says the import had finished already; nothing
	// was read.
	Done bool
	// RejectsPath is where the rejects went ("" when none was rejected).
	RejectsPath string
	Elapsed     time.Duration
}

// RejectedError is the error of a Strict import with rejected rows:
// nothing was enqueued. Line and Reason are the first's, Count how many.
type RejectedError struct {
	Line   int64
	Reason string
	Count  int64
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("line %d: %s (%d row(s) rejected in all, see the rejects file; --strict: nothing was enqueued)", e.Line, e.Reason, e.Count)
}

// CheckpointExistsError is returned when a checkpoint exists and Resume
// was not asked for.
type CheckpointExistsError struct {
	Path string
	// Done: that import finished.
	Done bool
}

func (e *CheckpointExistsError) Error() string {
	if e.Done {
		return "this file was imported already (its checkpoint " + e.Path + " says so): delete the checkpoint to import it again"
	}
	return "a checkpoint of an earlier import of this file exists (" + e.Path + "): give --resume to go on with it, or delete it to start over"
}

// checkpoint is the checkpoint file's content.
type checkpoint struct {
	Version     int    `json:"version"`
	Identity    string `json:"identity"`
	Size        int64  `json:"size"`
	Format      string `json:"format"`
	Type        string `json:"type"`
	BatchSize   int    `json:"batch_size"`
	Offset      int64  `json:"offset"`
	Lines       int64  `json:"lines"` // lines consumed up to Offset
	Line        int64  `json:"line"`
	Rows        int64  `json:"rows"`
	Enqueued    int64  `json:"enqueued"`
	Rejected    int64  `json:"rejected"`
	Duplicates  int64  `json:"duplicates"`
	Tasks       int64  `json:"tasks"`
	RejectsSize int64  `json:"rejects_size"`
	Done        bool   `json:"done"`
	UpdatedAt   string `json:"updated_at"`
}

// reject is one line of the rejects file.
type reject struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
	Row    string `json:"row"`
}

// row is one row read: its operation, or why it has none.
type row struct {
	line int64
	raw  []byte // the row's text, for the rejects file (only when rejected)
	p    tasks.Payload
	err  error
}

// source reads rows.
type source interface {
	next() (row, bool, error) // false at the end
	offset() int64            // bytes consumed so far
	lines() int64             // lines consumed so far
}

// Run imports the file.
func Run(ctx context.Context, enq Enqueuer, o Options) (Summary, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = tasks.DefaultBatchOperations
	}
	if o.BatchSize > tasks.MaxBatchOperations {
		return Summary{}, fmt.Errorf("batch size: at most %d", tasks.MaxBatchOperations)
	}
	if o.Format == "" {
		o.Format = FormatJSONL
		if strings.HasSuffix(strings.ToLower(o.Path), ".csv") {
			o.Format = FormatCSV
		}
	}
	if o.Format == FormatCSV && o.Type == "" {
		o.Type = tasks.TypeIdentify
	}
	if o.Type != "" && !tasks.Batchable(o.Type) {
		return Summary{}, fmt.Errorf("type %s cannot be imported (want a batchable type: identify, track, objects, ...)", o.Type)
	}
	stream := o.Path == "-"
	if stream && o.Resume {
		return Summary{}, errors.New("--resume needs a file, not stdin")
	}
	if !stream {
		if o.CheckpointPath == "" {
			o.CheckpointPath = o.Path + ".checkpoint"
		}
		if o.RejectsPath == "" {
			o.RejectsPath = o.Path + ".rejects.jsonl"
		}
	} else if o.RejectsPath == "" {
		o.RejectsPath = "import.rejects.jsonl"
	}

	var f *os.File
	var in io.Reader = o.In
	var size int64
	var head []byte
	if !stream {
		var err error
		if f, err = os.Open(o.Path); err != nil {
			return Summary{}, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return Summary{}, err
		}
		size = st.Size()
		head = make([]byte, min(size, 64<<10))
		if _, err := io.ReadFull(f, head); err != nil {
			return Summary{}, err
		}
		in = f
	}
	id := identity(o, size, head)
	cp := checkpoint{Version: 1, Identity: id, Size: size, Format: o.Format, Type: o.Type, BatchSize: o.BatchSize}
	sum := Summary{}
	if !stream {
		prev, err := readCheckpoint(o.CheckpointPath)
		switch {
		case err == nil && !o.Resume:
			return Summary{}, &CheckpointExistsError{Path: o.CheckpointPath, Done: prev.Done}
		case err == nil:
			if prev.Identity != id || prev.Size != size || prev.BatchSize != o.BatchSize {
				return Summary{}, fmt.Errorf("checkpoint %s is of another import (file, type, mapping, workspace or batch size differ)", o.CheckpointPath)
			}
			cp = prev
			sum.Resumed = true
			if cp.Done {
				sum.Done = true
				sum.Progress = cp.progress()
				return sum, nil
			}
		case errors.Is(err, os.ErrNotExist):
			if o.Resume {
				return Summary{}, fmt.Errorf("--resume: no checkpoint %s", o.CheckpointPath)
			}
		default:
			return Summary{}, fmt.Errorf("checkpoint %s: %w", o.CheckpointPath, err)
		}
	}

	// The rejects file: truncated to what the checkpoint counted.
	var rejects *os.File
	var rejectsW *bufio.Writer
	rejectsSize := cp.RejectsSize
	openRejects := func() error {
		if rejects != nil {
			return nil
		}
		var err error
		rejects, err = os.OpenFile(o.RejectsPath, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if err := rejects.Truncate(cp.RejectsSize); err != nil {
			return err
		}
		if _, err := rejects.Seek(cp.RejectsSize, io.SeekStart); err != nil {
			return err
		}
		rejectsW = bufio.NewWriter(rejects)
		return nil
	}
	defer func() {
		if rejects != nil {
			rejectsW.Flush()
			rejects.Close()
		}
	}()
	if sum.Resumed && cp.RejectsSize > 0 {
		if err := openRejects(); err != nil {
			return Summary{}, err
		}
	} else if sum.Resumed {
		if st, err := os.Stat(o.RejectsPath); err == nil && st.Size() > 0 {
			if err := openRejects(); err != nil { // truncates the lines after the checkpoint
				return Summary{}, err
			}
		}
	}

	open := func(offset, lines int64) (source, error) {
		switch o.Format {
		case FormatCSV:
			return newCSVSource(f, in, o, offset, lines)
		case FormatJSONL:
			return newJSONLSource(f, in, o, offset, lines)
		}
		return nil, fmt.Errorf("format %q: want csv or jsonl", o.Format)
	}
	check := func(r *row) {
		if r.err != nil {
			return
		}
		if d, ok := r.p.(tasks.Deduplicated); ok && d.EventID() == "" {
			r.p = toPointer(d.WithEventID(rowEventID(id, r.line)))
		}
		if verr := r.p.Validate(); verr != nil {
			r.err = verr
		} else if o.Check != nil {
			r.err = o.Check(r.p)
		}
	}
	if o.Strict {
		// Every row is checked before any is enqueued.
		if stream {
			return Summary{}, errors.New("--strict needs a file, not stdin (it reads the file twice)")
		}
		src, err := open(cp.Offset, cp.Lines)
		if err != nil {
			return Summary{}, err
		}
		var first *RejectedError
		n := int64(0)
		for {
			r, ok, err := src.next()
			if err != nil {
				return Summary{}, err
			}
			if !ok {
				break
			}
			if check(&r); r.err != nil {
				n++
				if first == nil {
					first = &RejectedError{Line: r.line, Reason: errReason(r.err)}
				}
				if err := writeReject(openRejects, &rejectsW, &rejectsSize, r.line, errReason(r.err), r.raw); err != nil {
					return Summary{}, err
				}
			}
		}
		if first != nil {
			first.Count = n
			sum.Progress = cp.progress()
			sum.Rejected += n
			sum.RejectsPath = o.RejectsPath
			sum.Elapsed = time.Since(start)
			return sum, first
		}
	}
	src, err := open(cp.Offset, cp.Lines)
	if err != nil {
		return Summary{}, err
	}

	var chunk []tasks.Payload
	var chunkLines []int64
	flushCtx := func() context.Context { return ctx }
	saveCP := func(done bool) error {
		if stream {
			return nil
		}
		cp.Offset, cp.Lines, cp.Done, cp.RejectsSize = src.offset(), src.lines(), done, rejectsSize
		cp.UpdatedAt = time.Now().UTC().Format(time.RFC3339)
		return writeCheckpoint(o.CheckpointPath, cp)
	}
	flush := func() error {
		for len(chunk) > 0 {
			key := "import:" + id + ":" + strconv.FormatInt(chunkLines[0], 10)
			opts := append(append([]producer.EnqueueOption{}, o.EnqueueOptions...), producer.BatchSize(o.BatchSize), producer.IdempotencyKey(key))
			rec, err := enq.EnqueueBatch(flushCtx(), chunk, opts...)
			var oe *producer.OperationError
			if errors.As(err, &oe) && oe.Index < len(chunk) {
				// Refused by the producer despite the checks here: that
				// row alone is rejected; the chunk goes again without it.
				if rerr := writeReject(openRejects, &rejectsW, &rejectsSize, chunkLines[oe.Index], errReason(oe.Err), nil); rerr != nil {
					return rerr
				}
				cp.Rejected++
				cp.Enqueued--
				chunk = append(chunk[:oe.Index], chunk[oe.Index+1:]...)
				chunkLines = append(chunkLines[:oe.Index], chunkLines[oe.Index+1:]...)
				continue
			}
			if err != nil {
				return fmt.Errorf("enqueue the rows from line %d: %w", chunkLines[0], err)
			}
			for _, t := range rec.Tasks {
				cp.Tasks++
				if t.Duplicate {
					cp.Duplicates += int64(t.Operations)
				}
			}
			break
		}
		chunk, chunkLines = chunk[:0], chunkLines[:0]
		if rejectsW != nil {
			if err := rejectsW.Flush(); err != nil {
				return err
			}
		}
		if err := saveCP(false); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if o.Progress != nil {
			p := cp.progress()
			p.Offset, p.Size = src.offset(), size
			o.Progress(p)
		}
		return nil
	}
	finish := func(err error) (Summary, error) {
		sum.Progress = cp.progress()
		sum.Offset, sum.Size = src.offset(), size
		sum.Elapsed = time.Since(start)
		if cp.Rejected > 0 {
			sum.RejectsPath = o.RejectsPath
		}
		return sum, err
	}
	for {
		if ctx.Err() != nil {
			// Interrupted: what was read goes in, briefly, then the
			// checkpoint says where to go on.
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			flushCtx = func() context.Context { return wctx }
			err := flush()
			cancel()
			if err != nil {
				return finish(err)
			}
			return finish(ctx.Err())
		}
		r, ok, err := src.next()
		if err != nil {
			if ferr := flush(); ferr != nil {
				return finish(ferr)
			}
			return finish(err)
		}
		if !ok {
			break
		}
		cp.Rows++
		cp.Line = r.line
		if check(&r); r.err != nil {
			cp.Rejected++
			if err := writeReject(openRejects, &rejectsW, &rejectsSize, r.line, errReason(r.err), r.raw); err != nil {
				return finish(err)
			}
			continue
		}
		cp.Enqueued++
		chunk = append(chunk, r.p)
		chunkLines = append(chunkLines, r.line)
		if len(chunk) >= o.BatchSize {
			if err := flush(); err != nil {
				return finish(err)
			}
		}
	}
	if err := flush(); err != nil {
		return finish(err)
	}
	if err := saveCP(true); err != nil {
		return finish(fmt.Errorf("checkpoint: %w", err))
	}
	return finish(nil)
}

func (cp checkpoint) progress() Progress {
	return Progress{Rows: cp.Rows, Enqueued: cp.Enqueued, Rejected: cp.Rejected, Duplicates: cp.Duplicates,
		Tasks: cp.Tasks, Offset: cp.Offset, Line: cp.Line}
}

// identity names an import: the file (size and first 64 KiB), format,
// type, mapping and workspace.
func identity(o Options, size int64, head []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "cioq-import\x00%d\x00%s\x00%s\x00%s\x00%s\x00", size, o.Format, o.Type, o.MappingSpec, o.Workspace)
	h.Write(head)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// rowEventID is the event id of the event on line of the import id: a
// ULID (time part 0) whose entropy is the first 80 bits of SHA-256.
func rowEventID(id string, line int64) string {
	var u ulid.ULID
	sum := sha256.Sum256([]byte("cioq-import-event:" + id + ":" + strconv.FormatInt(line, 10)))
	_ = u.SetEntropy(sum[:10])
	return u.String()
}

// toPointer turns the value WithEventID returns into the pointer payloads
// are.
func toPointer(p tasks.Payload) tasks.Payload {
	switch v := p.(type) {
	case tasks.Track:
		return &v
	case tasks.TrackAnonymous:
		return &v
	}
	return p
}

// errReason is an error's text without the producer's and client's
// prefixes (never a value: validation errors name fields only).
func errReason(err error) string {
	s := err.Error()
	for _, p := range []string{"producer: ", "customerio: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	return s
}

func writeReject(open func() error, w **bufio.Writer, size *int64, line int64, reason string, raw []byte) error {
	if err := open(); err != nil {
		return fmt.Errorf("rejects file: %w", err)
	}
	b, _ := json.Marshal(reject{Line: line, Reason: reason, Row: strings.ToValidUTF8(string(bytes.TrimRight(raw, "\r\n")), "\uFFFD")})
	b = append(b, '\n')
	n, err := (*w).Write(b)
	*size += int64(n)
	return err
}

func readCheckpoint(path string) (checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return checkpoint{}, err
	}
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return checkpoint{}, fmt.Errorf("not a checkpoint: %w", err)
	}
	return cp, nil
}

func writeCheckpoint(path string, cp checkpoint) error {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// recorder is an io.Reader that keeps what it read from the last mark,
// so a CSV record's text (for the rejects file) and its newlines (for
// line numbers) can be taken once the csv.Reader has read it.
type recorder struct {
	r    io.Reader
	buf  []byte
	out  []byte // what take returned last (reused)
	base int64  // file offset of buf[0]
}

func (rc *recorder) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
	rc.buf = append(rc.buf, p[:n]...)
	return n, err
}

// take returns the bytes up to file offset end and forgets them. The bytes
// are valid until the next take.
func (rc *recorder) take(end int64) []byte {
	n := int(end - rc.base)
	n = max(0, min(n, len(rc.buf)))
	rc.out = append(rc.out[:0], rc.buf[:n]...)
	rc.buf = rc.buf[:copy(rc.buf, rc.buf[n:])]
	rc.base = end
	if cap(rc.out) > 1<<20 {
		rc.out = nil // a long row: do not keep its buffer
	}
	return rc.out
}

// csvSource reads CSV rows.
type csvSource struct {
	o      Options
	rd     *csv.Reader
	rec    *recorder
	m      Mapping
	start  int64 // file offset the csv.Reader started at
	line   int64 // lines consumed before the next record
	header []string
}

func newCSVSource(f *os.File, in io.Reader, o Options, offset, line int64) (*csvSource, error) {
	s := &csvSource{o: o}
	if f != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		in = f
	}
	// The header, from the start.
	s.rec = &recorder{r: in}
	s.rd = newCSVReader(s.rec)
	header, err := s.rd.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the CSV file is empty: it needs a header row")
		}
		return nil, fmt.Errorf("header: %w", err)
	}
	for i, h := range header {
		if !utf8.ValidString(h) {
			return nil, fmt.Errorf("header: column %d is not valid UTF-8", i+1)
		}
	}
	s.header = append([]string(nil), header...)
	if s.m, err = o.Mapping.bind(s.header); err != nil {
		return nil, err
	}
	hdr := s.rec.take(s.rd.InputOffset())
	s.line = int64(bytes.Count(hdr, []byte("\n")))
	if offset > 0 {
		if f == nil {
			return nil, errors.New("cannot resume a stream")
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return nil, err
		}
		s.rec = &recorder{r: f, base: offset}
		s.rd = newCSVReader(s.rec)
		s.start, s.line = offset, line
	}
	return s, nil
}

func newCSVReader(r io.Reader) *csv.Reader {
	rd := csv.NewReader(r)
	rd.FieldsPerRecord = -1
	rd.ReuseRecord = true
	rd.LazyQuotes = false
	return rd
}

func (s *csvSource) offset() int64 { return s.start + s.rd.InputOffset() }
func (s *csvSource) lines() int64  { return s.line }

func (s *csvSource) next() (row, bool, error) {
	for {
		rec, err := s.rd.Read()
		if errors.Is(err, io.EOF) {
			return row{}, false, nil
		}
		end := s.offset()
		raw := s.rec.take(end)
		first := s.line + 1
		s.line += int64(bytes.Count(raw, []byte("\n")))
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return row{line: first, raw: raw, err: fmt.Errorf("not valid CSV: %v", pe.Err)}, true, nil
			}
			return row{}, false, err
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if len(raw) > maxLineBytes {
			return row{line: first, err: errors.New("the row is longer than 4 MiB")}, true, nil
		}
		r := row{line: first, raw: raw}
		if len(rec) != len(s.header) {
			r.err = fmt.Errorf("has %d columns, the header %d", len(rec), len(s.header))
			return r, true, nil
		}
		for i, v := range rec {
			if !utf8.ValidString(v) {
				r.err = fmt.Errorf("column %q is not valid UTF-8", s.header[i])
				return r, true, nil
			}
		}
		r.p, r.err = s.m.operation(s.o.Type, rec)
		return r, true, nil
	}
}

// jsonlSource reads JSON lines.
type jsonlSource struct {
	o    Options
	br   *bufio.Reader
	off  int64
	line int64
}

func newJSONLSource(f *os.File, in io.Reader, o Options, offset, line int64) (*jsonlSource, error) {
	if f != nil {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return nil, err
		}
		in = f
	}
	return &jsonlSource{o: o, br: bufio.NewReaderSize(in, 64<<10), off: offset, line: line}, nil
}

func (s *jsonlSource) offset() int64 { return s.off }
func (s *jsonlSource) lines() int64  { return s.line }

// readLine returns the next line (without its newline), or io.EOF.
func (s *jsonlSource) readLine() ([]byte, bool, error) {
	var long []byte
	tooLong := false
	for {
		b, err := s.br.ReadSlice('\n')
		s.off += int64(len(b))
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(b) <= maxLineBytes {
				long = append(long, b...)
			} else {
				tooLong = true
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, err
		}
		if long != nil && !tooLong {
			long = append(long, b...)
			b = long
		}
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return nil, false, io.EOF
		}
		return b, tooLong, nil
	}
}

func (s *jsonlSource) next() (row, bool, error) {
	for {
		b, tooLong, err := s.readLine()
		if errors.Is(err, io.EOF) {
			return row{}, false, nil
		}
		if err != nil {
			return row{}, false, err
		}
		s.line++
		r := row{line: s.line}
		if tooLong {
			r.err = errors.New("the line is longer than 4 MiB")
			return r, true, nil
		}
		t := bytes.TrimSpace(b)
		if len(t) == 0 {
			continue
		}
		r.raw = b
		r.p, r.err = s.decode(t)
		return r, true, nil
	}
}

// decode reads one JSON line: the import type's payload, or
// {"type","payload"}.
func (s *jsonlSource) decode(b []byte) (tasks.Payload, error) {
	typ, payload := s.o.Type, json.RawMessage(b)
	if typ == "" {
		var l struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := tasks.CheckUTF8(b); err != nil {
			return nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, errors.New(`not a JSON object {"type": ..., "payload": {...}}`)
		}
		if !tasks.Batchable(l.Type) {
			return nil, fmt.Errorf("invalid field \"type\": %q is not a batchable task type", l.Type)
		}
		typ, payload = l.Type, l.Payload
	}
	_, p, err := tasks.DecodeStrict(typ, payload)
	if err != nil {
		var de *tasks.DecodeError
		if errors.As(err, &de) {
			if de.Field == "" {
				return nil, fmt.Errorf("%s: %s", typ, de.Reason)
			}
			return nil, fmt.Errorf("%s: invalid field %q: %s", typ, de.Field, de.Reason)
		}
		return nil, err
	}
	return p, nil
}
