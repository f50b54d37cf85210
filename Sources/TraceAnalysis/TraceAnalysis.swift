// TraceAnalysis: replay of captures (being built).
