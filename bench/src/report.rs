//! `bench/results.md`: the latency table, then the load runs side by side
//! (one column per Redis setup), the failover drill, the ECPU arithmetic
//! and each run's statuses against what was expected.

use serde_json::Value;

use crate::Error;

pub struct Args {
    latency: String,
    loads: Vec<String>,
    out: String,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, Error> {
        let mut args = Self {
            latency: String::new(),
            loads: Vec::new(),
            out: "bench/results.md".into(),
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--latency" => args.latency = value,
                "--load" => args.loads.push(value),
                "--out" => args.out = value,
                other => return Err(format!("unknown flag {other}").into()),
            }
        }
        Ok(args)
    }
}

/// The figures of one load run that the tables need.
struct Figures {
    calls_per_flow: f64,
    script_usec_per_flow: f64,
    cpu_usec_per_flow: f64,
    bytes_per_call: f64,
    /// Main-thread CPU of one script call and of one GET or SET.
    cpu_per_call: f64,
    cpu_per_simple: f64,
    exec_per_call: f64,
    exec_per_simple: f64,
}

impl Figures {
    fn of(run: &Value) -> Self {
        let r = &run["redis"];
        let s = &run["simple"]["stats"];
        let n = |v: &Value| v.as_f64().unwrap_or(0.0);
        let flows = n(&run["flows"]).max(1.0);
        let calls = n(&r["script_calls"]).max(1.0);
        let simple = n(&run["simple"]["commands"]).max(1.0);
        Self {
            calls_per_flow: calls / flows,
            script_usec_per_flow: n(&r["script_usec"]) / flows,
            cpu_usec_per_flow: n(&r["cpu_usec"]) / flows,
            bytes_per_call: (n(&r["net_in"]) + n(&r["net_out"])) / calls,
            cpu_per_call: n(&r["cpu_usec"]) / calls,
            cpu_per_simple: n(&s["cpu_usec"]) / simple,
            exec_per_call: n(&r["script_usec"]) / calls,
            exec_per_simple: n(&s["simple_usec"]) / n(&s["simple_calls"]).max(1.0),
        }
    }

    /// ElastiCache Serverless: a simple command of up to 1 KB is 1 ECPU,
    /// and a command costs the higher of its vCPU time (in simple
    /// commands) and its KB transferred.
    fn ecpu_per_call(&self) -> f64 {
        (self.cpu_per_call / self.cpu_per_simple)
            .max(self.bytes_per_call / 1024.0)
            .max(1.0)
    }

    fn ecpu_per_flow(&self) -> f64 {
        self.calls_per_flow * self.ecpu_per_call()
    }
}

fn latency(run: &Value, function: &str) -> String {
    let l = &run["latency"][function];
    format!(
        "{:.2} / {:.2} / {:.1} ms",
        l["p50_ms"].as_f64().unwrap_or(0.0),
        l["p99_ms"].as_f64().unwrap_or(0.0),
        l["max_ms"].as_f64().unwrap_or(0.0)
    )
}

fn statuses(run: &Value) -> String {
    let total: u64 = run["histogram"]
        .as_array()
        .map(|h| h.iter().map(|r| r["count"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    format!("{} of {total}", run["unexpected"])
}

fn histogram(run: &Value) -> String {
    let mut out = format!(
        "Statuses, {} ({} flows):\n\n| function | call | expected | got | count |\n|---|---|---|---|---|\n",
        run["label"].as_str().unwrap_or("?"),
        run["flows"]
    );
    for row in run["histogram"].as_array().into_iter().flatten() {
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            row["function"].as_str().unwrap_or(""),
            row["case"].as_str().unwrap_or(""),
            row["expected"],
            row["got"],
            row["count"]
        );
    }
    out
}

pub fn run(args: Args) -> Result<(), Error> {
    let latency_table = std::fs::read_to_string(&args.latency)?;
    let runs: Vec<Value> = args
        .loads
        .iter()
        .map(|path| Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?))
        .collect::<Result<_, Error>>()?;
    let (clean, drills): (Vec<&Value>, Vec<&Value>) =
        runs.iter().partition(|r| r["drill"].is_null());
    let figures: Vec<Figures> = clean.iter().map(|r| Figures::of(r)).collect();
    let columns = |f: &dyn Fn(&Value, &Figures) -> String| -> String {
        clean
            .iter()
            .zip(&figures)
            .map(|(r, fig)| f(r, fig))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let header: Vec<String> = clean
        .iter()
        .map(|r| r["label"].as_str().unwrap_or("?").to_owned())
        .collect();
    let first = clean.first().ok_or("no load run without a drill")?;
    let mut out = format!(
        "{}\n\n### Under load and failure\n\n`./scripts/bench.sh` (`otp-bench load`): {} function processes side by side ({} request-otp, {} verify-otp), {} s per setup, each flow a request, the code from the Plivo stand-in and a verify, with a resend inside the cooldown (1 flow in 5) and a wrong guess (1 in 3) mixed in; then the failover drill.\n\n| figure | {} |\n|---|{}\n",
        latency_table.trim(),
        first["instances"],
        first["instances"].as_u64().unwrap_or(0) / 2,
        first["instances"].as_u64().unwrap_or(0) / 2,
        first["seconds"],
        header.join(" | "),
        "---|".repeat(header.len())
    );
    let mut row = |name: &str, f: &dyn Fn(&Value, &Figures) -> String| {
        out += &format!("| {name} | {} |\n", columns(f));
    };
    row("flows per second (request, code, verify)", &|r, _| {
        format!("{:.0}", r["flows_per_s"].as_f64().unwrap_or(0.0))
    });
    row("request-otp p50 / p99 / max", &|r, _| {
        latency(r, "request-otp")
    });
    row("verify-otp p50 / p99 / max", &|r, _| {
        latency(r, "verify-otp")
    });
    row("unexpected statuses", &|r, _| statuses(r));
    row(
        "Redis CPU per flow: scripts' execution (`INFO commandstats` usec ÷ flows)",
        &|_, f| format!("{:.1} µs", f.script_usec_per_flow),
    );
    row(
        "Redis CPU per flow: main thread, I/O and TLS included (`INFO cpu` ÷ flows)",
        &|_, f| format!("{:.1} µs", f.cpu_usec_per_flow),
    );
    row(
        "script calls per flow; bytes per call (in + out)",
        &|_, f| format!("{:.2}; {:.0} B", f.calls_per_flow, f.bytes_per_call),
    );
    row(
        "memory per pending phone; per source IP (`MEMORY USAGE`)",
        &|r, _| {
            format!(
                "{} B; {} B",
                r["memory"]["phone_bytes"], r["memory"]["ip_bytes"]
            )
        },
    );
    row(
        "ECPUs per flow (ElastiCache Serverless's rule, vCPU from main-thread CPU: see below)",
        &|_, f| format!("{:.1}", f.ecpu_per_flow()),
    );
    for drill in &drills {
        let d = &drill["drill"];
        out += &format!(
            "| failover drill ({}): replica promoted after the kill; last 503 after the promotion (recovery); lost writes | {:.0} ms; {:.0} ms; {} (of {} flows; {} 503s, {} after the old primary's restart) |\n",
            drill["label"].as_str().unwrap_or("?"),
            d["promotion_ms"].as_f64().unwrap_or(0.0),
            d["recovery_ms"].as_f64().unwrap_or(0.0),
            d["lost_writes"],
            drill["flows"],
            d["unavailable"],
            d["unavailable_after_restart"],
        );
    }
    out += &format!(
        "\nMachine: {}.\n\nECPUs, by the rule ElastiCache Serverless publishes (<https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/WhatIs.corecomponents.html#WhatIs.ELCpricing>: a simple GET or SET of up to 1 KB is 1 ECPU; a command costs the higher of its vCPU time, counted in simple GET/SETs, and its KB transferred), with vCPU time taken as the server's main-thread CPU (`INFO cpu`) per command, measured the same way for the scripts under load and for GET/SET alone:\n\n",
        first["machine"].as_str().unwrap_or("?")
    );
    for (run, f) in clean.iter().zip(&figures) {
        out += &format!(
            "- {}: a GET or SET costs this Redis {:.2} µs of main-thread CPU, a script call {:.2} µs, so {:.2} simple commands of vCPU; a call moves {:.0} B = {:.2} KB; each call costs max(1, {:.2}, {:.2}) = {:.2} ECPUs, and a flow makes {:.2} calls: **{:.1} ECPUs per flow**. (Counting the scripts' execution alone, {:.2} µs against {:.2} µs for a GET or SET, would make it {:.1}.)\n",
            run["label"].as_str().unwrap_or("?"),
            f.cpu_per_simple,
            f.cpu_per_call,
            f.cpu_per_call / f.cpu_per_simple,
            f.bytes_per_call,
            f.bytes_per_call / 1024.0,
            f.cpu_per_call / f.cpu_per_simple,
            f.bytes_per_call / 1024.0,
            f.ecpu_per_call(),
            f.calls_per_flow,
            f.ecpu_per_flow(),
            f.exec_per_call,
            f.exec_per_simple,
            f.calls_per_flow * (f.exec_per_call / f.exec_per_simple).max(1.0),
        );
    }
    out += "\n";
    for run in clean.iter().chain(&drills) {
        out += &histogram(run);
        out += "\n";
    }
    println!("{out}");
    std::fs::write(&args.out, out.trim_end().to_owned() + "\n")?;
    Ok(())
}
