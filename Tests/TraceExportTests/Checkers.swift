// Checkers for exported files, in Python against the formats' own readers: Perfetto's published
// schema (PyPI's `perfetto` package, perfetto_trace_pb2) and plain JSON. Each prints one JSON
// summary the tests compare with the analysis and with the workload's own counts.
import Foundation
import TestSupport

enum Checkers {
    static let perfetto = #"""
import json, sys
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
trace = pb.Trace()
with open(sys.argv[1], 'rb') as f:
    trace.ParseFromString(f.read())
clock = {}          # incremental clock value
threads = {}        # uuid -> name
processes = {}      # uuid -> name
counters = {}       # uuid -> name
names = {}          # event name iid -> name
stacks = {}         # uuid -> [(name, ts)]
slices = {}         # thread name -> count
problems = []
flow_begin, flow_end = set(), []
counter_points = {}
instants = {}
last_ts = {}
flows_by_thread = {}
incremental = None
default_clock = None
for p in trace.packet:
    if p.HasField('trace_packet_defaults'):
        default_clock = p.trace_packet_defaults.timestamp_clock_id
    if p.HasField('clock_snapshot'):
        for c in p.clock_snapshot.clocks:
            if c.is_incremental: incremental = (c.clock_id, c.timestamp)
    if p.HasField('interned_data'):
        for n in p.interned_data.event_names: names[n.iid] = n.name
    if p.HasField('track_descriptor'):
        d = p.track_descriptor
        if d.HasField('thread'): threads[d.uuid] = d.thread.thread_name
        elif d.HasField('process'): processes[d.uuid] = d.process.process_name
        elif d.HasField('counter'): counters[d.uuid] = d.name
        continue
    if not p.HasField('track_event'): continue
    clock_id = p.timestamp_clock_id if p.HasField('timestamp_clock_id') else default_clock
    if clock_id == incremental[0]:
        clock['v'] = clock.get('v', incremental[1]) + p.timestamp
        ts = clock['v']
    else:
        ts = p.timestamp
    e = p.track_event
    track = e.track_uuid
    if e.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
        st = stacks.setdefault(track, [])
        if st and ts < st[-1][1]: problems.append('begin before its parent began')
        st.append((names.get(e.name_iid, '?'), ts))
        label = threads.get(track, '?')
        slices[label] = slices.get(label, 0) + 1
    elif e.type == pb.TrackEvent.TYPE_SLICE_END:
        st = stacks.get(track, [])
        if not st: problems.append('end without begin'); continue
        name, begin = st.pop()
        if ts < begin: problems.append('end before begin %s' % name)
    elif e.type == pb.TrackEvent.TYPE_INSTANT:
        n = names.get(e.name_iid, '?')
        instants[n] = instants.get(n, 0) + 1
        for f in e.flow_ids: flow_begin.add(f)
        for f in e.terminating_flow_ids:
            flow_end.append(f)
            label = threads.get(track, '?')
            flows_by_thread[label] = flows_by_thread.get(label, 0) + 1
    elif e.type == pb.TrackEvent.TYPE_COUNTER:
        n = counters.get(track, '?')
        counter_points[n] = counter_points.get(n, 0) + 1
    if track not in threads and track not in processes and track not in counters:
        problems.append('event on an undescribed track %d' % track)
open_at_end = sum(len(s) for s in stacks.values())
print(json.dumps({
    'threads': sorted(threads.values()), 'processes': sorted(processes.values()),
    'slices': slices, 'open_at_end': open_at_end, 'problems': problems[:20],
    'flows_begun': len(flow_begin), 'flows_by_thread': flows_by_thread, 'flows_ended': len(flow_end),
    'flows_unpaired': len([f for f in flow_end if f not in flow_begin]),
    'counters': counter_points, 'instants': instants, 'packets': len(trace.packet)}, sort_keys=True))
"""#

    static let chrome = #"""
import json, sys
doc = json.load(open(sys.argv[1]))
events = doc['traceEvents']
threads, processes = {}, {}
stacks, last, slices, problems = {}, {}, {}, []
flow_s, flow_f = {}, []
counters = {}
flows_by_thread = {}
for e in events:
    ph = e['ph']
    key = (e.get('pid'), e.get('tid'))
    if ph == 'M':
        if e['name'] == 'thread_name': threads[key] = e['args']['name']
        if e['name'] == 'process_name': processes[e['pid']] = e['args']['name']
        continue
    if ph in ('B', 'E', 'i') and e.get('s', 't') == 't':
        if key not in threads: problems.append('event on an unnamed thread %s' % (key,))
        if e['ts'] < last.get(key, float('-inf')): problems.append('ts goes back on %s' % (key,))
        last[key] = e['ts']
    if ph == 'B':
        stacks.setdefault(key, []).append(e['name'])
        name = threads.get(key, '?')
        slices[name] = slices.get(name, 0) + 1
    elif ph == 'E':
        if not stacks.get(key): problems.append('E without B on %s' % (key,))
        else: stacks[key].pop()
    elif ph == 'X':
        name = threads.get(key, '?')
        slices[name] = slices.get(name, 0) + 1
    elif ph == 's':
        flow_s[e['id']] = e['ts']
    elif ph == 'f':
        flow_f.append((e['id'], e['ts']))
        label = threads.get(key, '?')
        flows_by_thread[label] = flows_by_thread.get(label, 0) + 1
    elif ph == 'C':
        counters[e['name']] = counters.get(e['name'], 0) + 1
unpaired = [f for f, ts in flow_f if f not in flow_s or flow_s[f] > ts]
print(json.dumps({'threads': sorted(threads.values()), 'processes': sorted(processes.values()), 'slices': slices,
                  'open_at_end': sum(len(s) for s in stacks.values()), 'problems': problems[:20],
                  'flows_begun': len(flow_s), 'flows_by_thread': flows_by_thread, 'flows_ended': len(flow_f), 'flows_unpaired': len(unpaired),
                  'counters': counters}, sort_keys=True))
"""#

    static let speedscope = #"""
import json, sys
doc = json.load(open(sys.argv[1]))
frames = doc['shared']['frames']
problems, opens = [], {}
for p in doc['profiles']:
    stack, last = [], float('-inf')
    for e in p['events']:
        if e['at'] < last: problems.append('at decreases in ' + p['name'])
        last = e['at']
        if e['type'] == 'O': stack.append(e['frame'])
        else:
            if not stack or stack[-1] != e['frame']: problems.append('close does not match open in ' + p['name']); break
            stack.pop()
    if stack: problems.append('unbalanced ' + p['name'])
    if not (p['startValue'] <= p['endValue']): problems.append('bad range ' + p['name'])
    opens[p['name']] = sum(1 for e in p['events'] if e['type'] == 'O')
print(json.dumps({'profiles': opens, 'frames': len(frames), 'problems': problems[:20]}, sort_keys=True))
"""#

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Installs Perfetto's Python schema and protobuf if they are missing (pip), or says why not.
    static func ensurePerfettoModule() throws {
        let check = try Shell.runCapturing("/usr/bin/env", ["python3", "-c", "import perfetto.protos.perfetto.trace.perfetto_trace_pb2"])
        if check.status == 0 { return }
        let install = try Shell.runCapturing("/usr/bin/env", ["python3", "-m", "pip", "install", "--quiet", "perfetto", "protobuf"],
                                             timeout: 300)
        guard install.status == 0 else {
            throw Failure(description: "PyPI's perfetto and protobuf packages are missing and pip could not install them: "
                + install.stderr.prefix(500))
        }
    }

    /// Runs a checker on `file`; its JSON summary.
    static func run(_ script: String, _ file: String) throws -> [String: Any] {
        let directory = try Erlang.temporaryDirectory("bt-check")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("check.py").path
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Shell.runCapturing("/usr/bin/env", ["python3", path, file], timeout: 300)
        guard result.status == 0, let data = result.stdout.data(using: .utf8),
              let summary = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "checker failed on \(file): \(result.stderr.prefix(2000))")
        }
        return summary
    }
}
