//! A real OTLP/gRPC receiver for tests: the opentelemetry-proto crate's tonic
//! TraceService and LogsService on 127.0.0.1:0, keeping every request it gets.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;

/// What the receiver got.
#[derive(Default)]
pub struct Received {
    pub traces: Vec<ExportTraceServiceRequest>,
    pub logs: Vec<ExportLogsServiceRequest>,
    /// The gRPC metadata of each logs export call, in order.
    pub log_metadata: Vec<tonic::metadata::MetadataMap>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub got: Arc<Mutex<Received>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.got.lock().unwrap().traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut got = self.got.lock().unwrap();
        got.log_metadata.push(request.metadata().clone());
        got.logs.push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Starts a receiver on an ephemeral loopback port; returns it and its
    /// `http://127.0.0.1:PORT` endpoint.
    pub async fn start() -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let r = Receiver::default();
        let svc = r.clone();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(svc.clone()))
                .add_service(LogsServiceServer::new(svc))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (r, format!("http://{addr}"))
    }

    /// Every span received, with its resource's `service.name`.
    pub fn spans(&self) -> Vec<(String, Span)> {
        let got = self.got.lock().unwrap();
        let mut out = Vec::new();
        for req in &got.traces {
            for rs in &req.resource_spans {
                let service = rs
                    .resource
                    .as_ref()
                    .and_then(|r| attrs(&r.attributes).get("service.name").cloned())
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push((service.clone(), s.clone()));
                    }
                }
            }
        }
        out
    }

    /// Writes what the Collector's `file` exporter would have written for the
    /// logs received (one [`collector_json_line`] per export request) to `path`.
    pub fn write_collector_file(&self, path: &std::path::Path) {
        let got = self.got.lock().unwrap();
        let lines: Vec<String> = got.logs.iter().map(collector_json_line).collect();
        std::fs::write(path, lines.join("\n")).unwrap();
    }

    /// Every log record received.
    pub fn logs(&self) -> Vec<LogRecord> {
        let got = self.got.lock().unwrap();
        got.logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| sl.log_records.clone())
            .collect()
    }
}

/// A comparable attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    S(String),
    B(bool),
    I(i64),
    D(f64),
    Other,
}

impl std::fmt::Display for V {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            V::S(s) => f.write_str(s),
            V::B(b) => write!(f, "{b}"),
            V::I(i) => write!(f, "{i}"),
            V::D(d) => write!(f, "{d}"),
            V::Other => f.write_str("?"),
        }
    }
}

pub fn value(v: &Option<AnyValue>) -> V {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => V::S(s.clone()),
        Some(any_value::Value::BoolValue(b)) => V::B(*b),
        Some(any_value::Value::IntValue(i)) => V::I(*i),
        Some(any_value::Value::DoubleValue(d)) => V::D(*d),
        _ => V::Other,
    }
}

/// Attributes as a sorted map.
pub fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, V> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value(&kv.value)))
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The OTLP JSON line the OpenTelemetry Collector's `file` exporter writes for
/// one logs export request (protobuf JSON: camelCase names, 64-bit integers as
/// strings, trace and span ids as hex), for feeding what the receiver got to
/// `cohortd analyze`.
pub fn collector_json_line(
    req: &opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest,
) -> String {
    use serde_json::{json, Value as J};
    fn any(v: &Option<AnyValue>) -> J {
        match v.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => json!({ "stringValue": s }),
            Some(any_value::Value::BoolValue(b)) => json!({ "boolValue": b }),
            Some(any_value::Value::IntValue(i)) => json!({ "intValue": i.to_string() }),
            Some(any_value::Value::DoubleValue(d)) => json!({ "doubleValue": d }),
            Some(any_value::Value::ArrayValue(a)) => json!({ "arrayValue": {
                "values": a.values.iter().map(|v| any(&Some(v.clone()))).collect::<Vec<_>>()
            }}),
            Some(any_value::Value::KvlistValue(kv)) => {
                json!({ "kvlistValue": { "values": kvs(&kv.values) } })
            }
            _ => json!({}),
        }
    }
    fn kvs(list: &[KeyValue]) -> J {
        J::Array(
            list.iter()
                .map(|kv| json!({ "key": kv.key, "value": any(&kv.value) }))
                .collect(),
        )
    }
    let resource_logs: Vec<J> = req
        .resource_logs
        .iter()
        .map(|rl| {
            let scope_logs: Vec<J> = rl
                .scope_logs
                .iter()
                .map(|sl| {
                    let records: Vec<J> = sl
                        .log_records
                        .iter()
                        .map(|r| {
                            json!({
                                "timeUnixNano": r.time_unix_nano.to_string(),
                                "observedTimeUnixNano": r.observed_time_unix_nano.to_string(),
                                "severityNumber": r.severity_number,
                                "severityText": r.severity_text,
                                "body": {},
                                "attributes": kvs(&r.attributes),
                                "traceId": hex(&r.trace_id),
                                "spanId": hex(&r.span_id),
                                "eventName": r.event_name,
                            })
                        })
                        .collect();
                    json!({
                        "scope": { "name": sl.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default() },
                        "logRecords": records,
                    })
                })
                .collect();
            json!({
                "resource": { "attributes": kvs(rl.resource.as_ref().map_or(&[][..], |r| &r.attributes)) },
                "scopeLogs": scope_logs,
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs }).to_string()
}
