package otlp

import (
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the OTLP messages this package writes, from
// opentelemetry-proto: collector/trace/v1/trace_service.proto,
// trace/v1/trace.proto, resource/v1/resource.proto and
// common/v1/common.proto.
const (
	// ExportTraceServiceRequest
	fRequestResourceSpans protowire.Number = 1

	// ResourceSpans
	fResourceSpansResource  protowire.Number = 1
	fResourceSpansScopes    protowire.Number = 2
	fResourceSpansSchemaURL protowire.Number = 3

	// Resource
	fResourceAttributes protowire.Number = 1

	// ScopeSpans
	fScopeSpansScope     protowire.Number = 1
	fScopeSpansSpans     protowire.Number = 2
	fScopeSpansSchemaURL protowire.Number = 3

	// InstrumentationScope
	fScopeName       protowire.Number = 1
	fScopeVersion    protowire.Number = 2
	fScopeAttributes protowire.Number = 3

	// Span
	fSpanTraceID           protowire.Number = 1
	fSpanSpanID            protowire.Number = 2
	fSpanTraceState        protowire.Number = 3
	fSpanParentSpanID      protowire.Number = 4
	fSpanName              protowire.Number = 5
	fSpanKind              protowire.Number = 6
	fSpanStartTime         protowire.Number = 7
	fSpanEndTime           protowire.Number = 8
	fSpanAttributes        protowire.Number = 9
	fSpanDroppedAttributes protowire.Number = 10
	fSpanEvents            protowire.Number = 11
	fSpanDroppedEvents     protowire.Number = 12
	fSpanLinks             protowire.Number = 13
	fSpanDroppedLinks      protowire.Number = 14
	fSpanStatus            protowire.Number = 15
	fSpanFlags             protowire.Number = 16

	// Span.Event
	fEventTime              protowire.Number = 1
	fEventName              protowire.Number = 2
	fEventAttributes        protowire.Number = 3
	fEventDroppedAttributes protowire.Number = 4

	// Span.Link
	fLinkTraceID           protowire.Number = 1
	fLinkSpanID            protowire.Number = 2
	fLinkTraceState        protowire.Number = 3
	fLinkAttributes        protowire.Number = 4
	fLinkDroppedAttributes protowire.Number = 5
	fLinkFlags             protowire.Number = 6

	// Status
	fStatusMessage protowire.Number = 2
	fStatusCode    protowire.Number = 3

	// KeyValue
	fKeyValueKey   protowire.Number = 1
	fKeyValueValue protowire.Number = 2

	// AnyValue (a oneof: the field set is written even when zero)
	fAnyString protowire.Number = 1
	fAnyBool   protowire.Number = 2
	fAnyInt    protowire.Number = 3
	fAnyDouble protowire.Number = 4
	fAnyArray  protowire.Number = 5
	fAnyKVList protowire.Number = 6
	fAnyBytes  protowire.Number = 7

	// ArrayValue and KeyValueList
	fListValues protowire.Number = 1
)

// SpanFlags bits (trace.proto): the low 8 bits are the W3C trace flags.
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// OTLP's Status.StatusCode, which numbers Ok and Error the other way
// round from go.opentelemetry.io/otel/codes.
const (
	statusUnset = 0
	statusOk    = 1
	statusError = 2
)

// scopeKey identifies an instrumentation scope for grouping.
type scopeKey struct {
	name, version, schemaURL string
	attrs                    attribute.Distinct
}

// resourceKey identifies a resource for grouping.
type resourceKey struct {
	attrs     attribute.Distinct
	schemaURL string
}

type scopeGroup struct {
	scope instrumentation.Scope
	spans []sdktrace.ReadOnlySpan
}

type resourceGroup struct {
	res    *resource.Resource
	scopes []*scopeGroup
	index  map[scopeKey]*scopeGroup
}

// appendRequest appends the ExportTraceServiceRequest carrying spans to
// b: one ResourceSpans per resource and, in it, one ScopeSpans per
// instrumentation scope, in the order they first occur in spans.
func appendRequest(b []byte, spans []sdktrace.ReadOnlySpan) []byte {
	var groups []*resourceGroup
	index := make(map[resourceKey]*resourceGroup)
	for _, s := range spans {
		if s == nil {
			continue
		}
		res := s.Resource()
		rk := resourceKey{attrs: res.Equivalent(), schemaURL: res.SchemaURL()}
		rg := index[rk]
		if rg == nil {
			rg = &resourceGroup{res: res, index: make(map[scopeKey]*scopeGroup)}
			index[rk] = rg
			groups = append(groups, rg)
		}
		sc := s.InstrumentationScope()
		sk := scopeKey{name: sc.Name, version: sc.Version, schemaURL: sc.SchemaURL, attrs: sc.Attributes.Equivalent()}
		sg := rg.index[sk]
		if sg == nil {
			sg = &scopeGroup{scope: sc}
			rg.index[sk] = sg
			rg.scopes = append(rg.scopes, sg)
		}
		sg.spans = append(sg.spans, s)
	}
	for _, rg := range groups {
		b = appendMessage(b, fRequestResourceSpans, func(b []byte) []byte {
			return appendResourceSpans(b, rg)
		})
	}
	return b
}

func appendResourceSpans(b []byte, rg *resourceGroup) []byte {
	b = appendMessage(b, fResourceSpansResource, func(b []byte) []byte {
		return appendAttributes(b, fResourceAttributes, rg.res.Attributes())
	})
	for _, sg := range rg.scopes {
		b = appendMessage(b, fResourceSpansScopes, func(b []byte) []byte {
			b = appendMessage(b, fScopeSpansScope, func(b []byte) []byte {
				b = appendString(b, fScopeName, sg.scope.Name)
				b = appendString(b, fScopeVersion, sg.scope.Version)
				return appendAttributes(b, fScopeAttributes, sg.scope.Attributes.ToSlice())
			})
			for _, s := range sg.spans {
				b = appendMessage(b, fScopeSpansSpans, func(b []byte) []byte { return appendSpan(b, s) })
			}
			return appendString(b, fScopeSpansSchemaURL, sg.scope.SchemaURL)
		})
	}
	return appendString(b, fResourceSpansSchemaURL, rg.res.SchemaURL())
}

func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, fSpanTraceID, tid[:])
	b = appendBytes(b, fSpanSpanID, sid[:])
	b = appendString(b, fSpanTraceState, sc.TraceState().String())
	parent := s.Parent()
	if parent.SpanID().IsValid() {
		pid := parent.SpanID()
		b = appendBytes(b, fSpanParentSpanID, pid[:])
	}
	b = appendString(b, fSpanName, s.Name())
	b = appendVarint(b, fSpanKind, uint64(s.SpanKind()))
	b = appendTime(b, fSpanStartTime, s.StartTime())
	b = appendTime(b, fSpanEndTime, s.EndTime())
	b = appendAttributes(b, fSpanAttributes, s.Attributes())
	b = appendVarint(b, fSpanDroppedAttributes, count(s.DroppedAttributes()))
	for _, ev := range s.Events() {
		b = appendMessage(b, fSpanEvents, func(b []byte) []byte {
			b = appendTime(b, fEventTime, ev.Time)
			b = appendString(b, fEventName, ev.Name)
			b = appendAttributes(b, fEventAttributes, ev.Attributes)
			return appendVarint(b, fEventDroppedAttributes, count(ev.DroppedAttributeCount))
		})
	}
	b = appendVarint(b, fSpanDroppedEvents, count(s.DroppedEvents()))
	for _, l := range s.Links() {
		b = appendMessage(b, fSpanLinks, func(b []byte) []byte {
			ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
			b = appendBytes(b, fLinkTraceID, ltid[:])
			b = appendBytes(b, fLinkSpanID, lsid[:])
			b = appendString(b, fLinkTraceState, l.SpanContext.TraceState().String())
			b = appendAttributes(b, fLinkAttributes, l.Attributes)
			b = appendVarint(b, fLinkDroppedAttributes, count(l.DroppedAttributeCount))
			return appendFixed32(b, fLinkFlags, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()))
		})
	}
	b = appendVarint(b, fSpanDroppedLinks, count(s.DroppedLinks()))
	st := s.Status()
	b = appendMessage(b, fSpanStatus, func(b []byte) []byte {
		b = appendString(b, fStatusMessage, st.Description)
		code := statusUnset
		switch st.Code {
		case codes.Ok:
			code = statusOk
		case codes.Error:
			code = statusError
		}
		return appendVarint(b, fStatusCode, uint64(code))
	})
	return appendFixed32(b, fSpanFlags, spanFlags(sc.TraceFlags(), parent.IsRemote()))
}

// spanFlags returns OTLP's flags of a span (remote saying whether its
// parent is remote) or of a link (remote saying whether the linked span
// is): the W3C trace flags and whether the context is remote.
func spanFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if remote {
		f |= flagIsRemote
	}
	return f
}

func appendAttributes(b []byte, num protowire.Number, kvs []attribute.KeyValue) []byte {
	for _, kv := range kvs {
		b = appendMessage(b, num, func(b []byte) []byte { return appendKeyValue(b, kv) })
	}
	return b
}

func appendKeyValue(b []byte, kv attribute.KeyValue) []byte {
	b = appendString(b, fKeyValueKey, string(kv.Key))
	return appendMessage(b, fKeyValueValue, func(b []byte) []byte { return appendAnyValue(b, kv.Value) })
}

// appendAnyValue appends the fields of the AnyValue of v; an EMPTY value
// (or a type this package does not know) is an AnyValue with none.
func appendAnyValue(b []byte, v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		return appendBool(protowire.AppendTag(b, fAnyBool, protowire.VarintType), v.AsBool())
	case attribute.INT64:
		return protowire.AppendVarint(protowire.AppendTag(b, fAnyInt, protowire.VarintType), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return protowire.AppendFixed64(protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type), math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		return protowire.AppendString(protowire.AppendTag(b, fAnyString, protowire.BytesType), v.AsString())
	case attribute.BYTESLICE:
		return protowire.AppendBytes(protowire.AppendTag(b, fAnyBytes, protowire.BytesType), v.AsByteSlice())
	case attribute.BOOLSLICE:
		return appendArray(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return appendArray(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return appendArray(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return appendArray(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return appendArray(b, v.AsSlice(), func(v attribute.Value) attribute.Value { return v })
	case attribute.MAP:
		return appendMessage(b, fAnyKVList, func(b []byte) []byte {
			return appendAttributes(b, fListValues, v.AsMap())
		})
	}
	return b
}

// appendArray appends an AnyValue's array_value holding the values of s.
func appendArray[T any](b []byte, s []T, value func(T) attribute.Value) []byte {
	return appendMessage(b, fAnyArray, func(b []byte) []byte {
		for _, e := range s {
			b = appendMessage(b, fListValues, func(b []byte) []byte { return appendAnyValue(b, value(e)) })
		}
		return b
	})
}

// appendMessage appends the embedded message field num whose contents
// body appends, prefixed with their length once it is known.
func appendMessage(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = body(b)
	n := len(b) - start
	size := protowire.SizeVarint(uint64(n))
	for range size {
		b = append(b, 0)
	}
	copy(b[start+size:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}

// The helpers below leave out a field holding its zero value, as proto3
// does.

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

func appendBytes(b []byte, num protowire.Number, p []byte) []byte {
	if len(p) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), p)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendFixed32(protowire.AppendTag(b, num, protowire.Fixed32Type), v)
}

func appendTime(b []byte, num protowire.Number, t time.Time) []byte {
	if t.IsZero() || t.UnixNano() <= 0 {
		return b
	}
	return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), uint64(t.UnixNano()))
}

func appendBool(b []byte, v bool) []byte {
	return protowire.AppendVarint(b, protowire.EncodeBool(v))
}

// count returns a dropped count as a uint32 field value.
func count(n int) uint64 {
	if n <= 0 {
		return 0
	}
	return uint64(min(n, math.MaxUint32))
}
