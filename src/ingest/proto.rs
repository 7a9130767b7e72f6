//! Code generated from `proto/tallyd/v1/ingest.proto`: tallyd's own gRPC ingest API.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("tallyd.v1");
