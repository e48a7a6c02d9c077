package telemetry

import "fmt"

// Code says what went wrong; the values are those of the C ABI's telemetry_error_code_t.
type Code int

// String is the code's C name without the TELEMETRY_ERROR_CODE_ prefix.
func (c Code) String() string {
	switch c {
	case CodeNullPointer:
		return "NULL_POINTER"
	case CodeInvalidUTF8:
		return "INVALID_UTF8"
	case CodeInvalidJSON:
		return "INVALID_JSON"
	case CodeInvalidConfig:
		return "INVALID_CONFIG"
	case CodeInvalidEvent:
		return "INVALID_EVENT"
	case CodeInvalidArgument:
		return "INVALID_ARGUMENT"
	case CodeTooLarge:
		return "TOO_LARGE"
	case CodeShutDown:
		return "SHUT_DOWN"
	case CodeTimeout:
		return "TIMEOUT"
	case CodeNoMemorySink:
		return "NO_MEMORY_SINK"
	case CodePanic:
		return "PANIC"
	case CodeNotDelivered:
		return "NOT_DELIVERED"
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is every error this package returns: the library's code and message.
//
// Compare with the sentinels using errors.Is; read the details with errors.As:
//
//	if errors.Is(err, telemetry.ErrInvalidConfig) { ... }
//	var te *telemetry.Error
//	if errors.As(err, &te) { log.Print(te.Code, te.Message) }
type Error struct {
	// Code says what went wrong.
	Code Code
	// Message says it for people.
	Message string

	cause    error // e.g. context.DeadlineExceeded behind a Flush timeout
	sentinel bool
}

func (e *Error) Error() string {
	if e.cause != nil {
		return "telemetry: " + e.Message + ": " + e.cause.Error()
	}
	return "telemetry: " + e.Message
}

// Is reports whether target is the sentinel for e's code, so errors.Is(err, ErrShutDown)
// holds for every shut-down error whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.sentinel && t.Code == e.Code
}

// Unwrap returns the cause of e, if any (the context's error for a Flush that ran out of
// time on the context's deadline).
func (e *Error) Unwrap() error { return e.cause }

func sentinel(code Code, message string) *Error {
	return &Error{Code: code, Message: message, sentinel: true}
}

// Sentinels for errors.Is, one per code.
var (
	ErrNullPointer     = sentinel(CodeNullPointer, "a required pointer was nil")
	ErrInvalidUTF8     = sentinel(CodeInvalidUTF8, "text is not valid UTF-8")
	ErrInvalidJSON     = sentinel(CodeInvalidJSON, "text is not JSON")
	ErrInvalidConfig   = sentinel(CodeInvalidConfig, "invalid configuration")
	ErrInvalidEvent    = sentinel(CodeInvalidEvent, "invalid event")
	ErrInvalidArgument = sentinel(CodeInvalidArgument, "invalid argument")
	ErrTooLarge        = sentinel(CodeTooLarge, "input too large")
	ErrShutDown        = sentinel(CodeShutDown, "the client is closed")
	ErrTimeout         = sentinel(CodeTimeout, "timed out")
	ErrNoMemorySink    = sentinel(CodeNoMemorySink, "the client's sink is not memory")
	ErrPanic           = sentinel(CodePanic, "the library panicked")
	ErrNotDelivered    = sentinel(CodeNotDelivered, "events were dropped, not delivered")
)

func newError(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
