// OTP's own processes (kernel, stdlib, global, logger, supervisors...): waiting is their normal
// state, so `hang` never makes them suspects because they wait; only their own evidence (a queue
// that grows, a frozen queue of hundreds) does. Known by registered name or initial call.
import TraceModel

enum OTPMachinery {
    static let names: Set<String> = [
        "init", "erl_prim_loader", "error_logger", "logger", "logger_sup", "logger_proxy", "logger_handler_watcher",
        "logger_std_h_default", "application_controller", "kernel_sup", "kernel_safe_sup", "kernel_refc",
        "code_server", "erts_code_purger", "file_server_2", "global_name_server", "global_group",
        "global_group_check", "inet_db", "net_kernel", "net_sup", "auth", "erl_epmd", "erl_signal_server", "rex",
        "user", "user_drv", "standard_error", "standard_error_sup", "socket_registry", "timer_server", "pg",
        "erpc", "disk_log_server", "disk_log_sup", "release_handler", "alarm_handler", "sasl_sup",
        "overload", "erl_distribution", "dist_ac", "mnesia_monitor", "mnesia_locker", "mnesia_tm",
        "mnesia_controller", "mnesia_recover", "mnesia_event", "mnesia_sup", "mnesia_kernel_sup",
        "mnesia_checkpoint_sup", "mnesia_snmp_sup", "mnesia_late_loader", "ssl_manager", "ssl_sup",
        "inets_sup", "httpc_manager", "os_mon_sup", "memsup", "cpu_sup", "disksup", "tls_connection_sup",
    ]

    static let modules: Set<String> = [
        "global", "global_group", "pg", "code_server", "logger", "logger_olp", "logger_proxy", "logger_h_common",
        "logger_std_h", "application_controller", "application_master", "supervisor", "supervisor_bridge",
        "net_kernel", "dist_util", "erl_distribution", "inet_tcp_dist", "rpc", "erpc", "timer", "user_drv", "group",
        "prim_file", "file_server", "erl_prim_loader", "init", "kernel", "kernel_config", "error_logger",
        "erts_code_purger", "erl_signal_handler", "inet_db", "auth", "erl_epmd", "standard_error", "mnesia_locker",
        "mnesia_tm", "mnesia_monitor", "mnesia_controller", "mnesia_recover", "disk_log", "peer", "beamtrace_agent",
    ]

    static func contains(_ pid: ProcessID, _ dictionaries: TraceDictionaries) -> Bool {
        guard let entry = dictionaries.process(pid) else { return false }
        if entry.registeredName != 0 {
            let name = dictionaries.atom(entry.registeredName)
            if names.contains(name) || name.hasSuffix("_sup") { return true }
        }
        if let mfa = dictionaries.function(entry.initialCall) {
            return modules.contains(dictionaries.atom(mfa.module))
        }
        return false
    }
}
