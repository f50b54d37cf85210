// TraceSession: live recording on remote nodes (being built).
