// CaptureStore: the capture format (segments of columnar LZ4 blocks, dictionaries, index), its
// writer, reader, recovery and the import of OTP's own trace files. See docs/FORMAT.md.
//
// API sketch (being built; names are stable):
//   let writer = try CaptureWriter(creating: url, options: CaptureWriter.Options())
//   writer.dictionaries / try writer.append(batch) / try writer.close()
//   let reader = try CaptureReader(opening: url)
//   reader.dictionaries, reader.summary, reader.recovery
//   try reader.forEach(matching: EventQuery(timeRange:nodes:pids:functions:kinds:)) { event, payload in ...; return true }
//   try reader.events(matching: query) -> [RecordedEvent]
