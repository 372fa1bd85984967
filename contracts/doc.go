// Package contracts checks tasks against what a Customer.io workspace
// expects of them, before Customer.io sees the data: the templates a
// transactional send names and the message_data variables their Liquid
// uses, the declared types of people's and objects' attributes, and event
// timestamps. Customer.io accepts all of these and fails later, silently
// or out of sight: a send missing a variable is answered 200 and shows as
// "Failed" inside Customer.io; a revenue sent as "1000" is stored as text
// and a segment on "greater than 500" never matches; a millisecond
// timestamp is a date in the year 55,000 (Track v2 replaces it by the time
// it received the event, without an error).
//
// A [Set] is a compiled contracts file. The producer checks every task
// with it before anything reaches Redis (producer.WithContracts), so does
// every front door that enqueues through the producer (cioq enqueue,
// POST /v1/tasks, the Segment-spec endpoints), and the worker checks again
// after decoding (worker.Config.Contracts), so a task enqueued before a
// contract changed is judged by the contract in force: dead-lettered as
// invalid, with the reason, instead of delivered. The package is pure: no
// Redis, and HTTP only in [Pull].
//
// # The file
//
// JSON, per workspace ("default" is the default workspace), read strictly
// (an unknown key, type or policy is an error naming its path):
//
//	{"workspaces": {"default": {
//	  "transactional": {
//	    "strict_ids": false,
//	    "messages": [
//	      {"id": 7, "trigger": "password_reset", "channel": "email",
//	       "variables": {"reset_link": {"type": "string"},
//	                     "expiry_hours": {"type": "number", "optional": true}}},
//	      {"id": 8, "name": "order_confirmation", "channel": "email", "source": "pulled",
//	       "variables": {"order_id": {}, "items": {"type": "array", "optional": true},
//	                     "items[].price": {"type": "number"}}}]},
//	  "attributes": {
//	    "policy": "refuse",
//	    "people": {"attributes": {"total_revenue": {"type": "number", "policy": "coerce"},
//	                              "last_active_at": {"type": "timestamp", "policy": "coerce"}}},
//	    "objects": {"1": {"policy": "coerce", "attributes": {"mrr": {"type": "number"}}}}},
//	  "events": {"timestamp_policy": "coerce"}}}}
//
// A send's transactional_message_id finds its message by id (all digits)
// or by trigger name, compared case-insensitively (a message without
// "trigger" is found by "name": Customer.io's list of messages gives their
// names; whether a message's trigger name is always its name is
// UNCONFIRMED, so set "trigger" where they differ). A send naming no
// message of the file is not checked, unless "strict_ids" is true: then it
// is refused, naming the id. A message with a "channel" refuses a send of
// another channel.
//
// Variables are message_data paths: "reset_link", "order.id" (a key of an
// object), "items[].price" (a key of every element of the array items; an
// absent or empty array has no elements to check). A variable is required
// unless "optional"; a missing or null value of a required one refuses the
// send. A "type" (string, number, boolean, timestamp, array, object; any
// by default) refuses a value of another type. `cioq contracts pull`
// writes the variables from the templates' Liquid ([TemplateVariables]).
//
// Attributes are declared per entity: "people" (identify, merge on signup,
// Pipelines identify traits) and "objects" by object type id (object
// upserts, Pipelines group traits); attributes not declared are not
// checked, and null (which removes an attribute) always passes. Types:
// number, string, boolean, timestamp (Unix seconds), array, object. The
// policy of an attribute is its own "policy", else its entity's, else the
// file's "attributes.policy", else refuse. Under coerce a value converts
// when it does so without guessing: "1000" → 1000, "true" → true, 1000 →
// "1000", a millisecond timestamp, fractional seconds or an ISO-8601 time
// → Unix seconds; anything else is refused. Coerced values are counted
// ([Observer]).
//
// "events.timestamp_policy" checks every event timestamp: a Track event's
// must be Unix seconds (milliseconds are coerced, or refused), a Pipelines
// message's ISO-8601 (Unix seconds or milliseconds written as digits are
// coerced to RFC 3339, or refused; other text is refused). Without it,
// timestamps are not checked.
//
// # Errors
//
// A refused task is an [*Error] listing every [Violation]: the field as the
// payload names it, the rule, and what the contract wanted and found,
// never the value:
//
//	message_data.reset_link: required by template "password_reset" (id 7), missing
//	attributes.total_revenue: declared a number (people attributes), got a string
//	timestamp: must be Unix seconds, got milliseconds (read as seconds, a date around the year 55,000)
//
// It unwraps to a *customerio.ValidationError naming the first field.
package contracts
