// TraceModel: trace events named after OTP trace tags, and the trace-message decoder. (Being built.)
