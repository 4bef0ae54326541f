//! The image ships the model as one file, so weights kept in side files would be missing.

use super::error::ModelError;
use super::proto::tensor_proto::DataLocation;
use super::proto::{GraphProto, ModelProto, TensorProto};

pub fn check_self_contained(model: &ModelProto) -> Result<(), ModelError> {
    model.graph.as_ref().map_or(Ok(()), check_graph)
}

fn check_graph(graph: &GraphProto) -> Result<(), ModelError> {
    let sparse = graph
        .sparse_initializer
        .iter()
        .flat_map(|s| s.values.iter().chain(s.indices.iter()));
    for tensor in graph.initializer.iter().chain(sparse) {
        check_tensor(tensor)?;
    }
    for attribute in graph.node.iter().flat_map(|n| n.attribute.iter()) {
        for tensor in attribute.t.iter().chain(attribute.tensors.iter()) {
            check_tensor(tensor)?;
        }
        for subgraph in attribute.g.iter().chain(attribute.graphs.iter()) {
            check_graph(subgraph)?;
        }
    }
    Ok(())
}

fn check_tensor(tensor: &TensorProto) -> Result<(), ModelError> {
    if tensor.data_location() != DataLocation::External {
        return Ok(());
    }
    let location = tensor
        .external_data
        .iter()
        .find(|entry| entry.key() == "location")
        .map(|entry| entry.value().to_string())
        .unwrap_or_default();
    Err(ModelError::ExternalData {
        tensor: tensor.name().to_string(),
        location,
    })
}
