// SPDX-License-Identifier: MPL-2.0
//! GStreamer conventions the elements follow: their enum types are plugin API (so the documentation
//! lists them), and the read-only `active-*` properties announce their changes with `notify`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;

/// Every element of the plugin, by factory name.
fn plugin_elements() -> Vec<gst::ElementFactory> {
    common::init();
    gst::Registry::get()
        .features_by_plugin("dlc")
        .into_iter()
        .filter_map(|feature| feature.downcast::<gst::ElementFactory>().ok())
        .collect()
}

#[test]
fn every_enum_and_flags_property_type_is_plugin_api() {
    let factories = plugin_elements();
    assert!(factories.len() >= 3, "the dlc plugin lists its elements");
    for factory in factories {
        let element = factory.create().build().expect("the element can be created");
        let own = element.type_();
        for pspec in element.list_properties().iter().filter(|p| p.owner_type() == own) {
            let value_type = pspec.value_type();
            if value_type.is_a(glib::Type::ENUM) || value_type.is_a(glib::Type::FLAGS) {
                assert!(
                    value_type.plugin_api_flags().is_some(),
                    "{}::{}: its type {} is not marked as plugin API: in the element's register(), \
                     call `<the Rust type>::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty())`",
                    factory.name(),
                    pspec.name(),
                    value_type.name()
                );
            }
        }
    }
}

/// What a notify handler of `property` saw, read inside the handler: each call's value.
fn record_notifies(element: &gst::Element, property: &'static str) -> Arc<Mutex<Vec<Option<String>>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    element.connect_notify(Some(property), move |element, _| {
        // Reading the property from the handler also shows that no element lock is held here.
        record.lock().unwrap().push(element.property::<Option<String>>(property));
    });
    seen
}

/// Runs `launch` (with an element named `e`) to its end and checks that `active-provider` and
/// `active-pixel-backend` were notified once when the element started (to `cpu`) and once when
/// it stopped (back to unset).
fn check_active_notifies(launch: &str) {
    let pipeline = common::pipeline(launch);
    let element = pipeline.by_name("e").expect("the element is named e");
    let providers = record_notifies(&element, "active-provider");
    let backends = record_notifies(&element, "active-pixel-backend");
    let log = common::run(&pipeline, Duration::from_secs(60));
    assert!(log.errors.is_empty(), "{}", log.error_text());
    assert!(log.eos, "the pipeline ran to its end: {log:?}");
    let expected = vec![Some("cpu".to_string()), None];
    assert_eq!(*providers.lock().unwrap(), expected, "notify::active-provider on start, then on stop");
    assert_eq!(*backends.lock().unwrap(), expected, "notify::active-pixel-backend on start, then on stop");
}

#[test]
fn dlcdetect_notifies_active_provider_and_pixel_backend() {
    let scrfd = require_fixture!("scrfd.onnx");
    check_active_notifies(&format!(
        "videotestsrc num-buffers=2 ! dlcdetect name=e execution-provider=cpu pixel-backend=cpu model-file={} \
         ! fakesink",
        scrfd.display()
    ));
}

#[test]
fn dlcenhance_notifies_active_provider_and_pixel_backend() {
    let gfpgan = require_fixture!("gfpgan.onnx");
    check_active_notifies(&format!(
        "videotestsrc num-buffers=2 ! dlcenhance name=e execution-provider=cpu pixel-backend=cpu model-file={} \
         ! fakesink",
        gfpgan.display()
    ));
}

#[test]
fn dlcswap_notifies_active_provider_and_pixel_backend() {
    let Some((detector, media, [arcface, inswapper])) = common::real_faces(["arcface.onnx", "inswapper.onnx"]) else {
        return;
    };
    check_active_notifies(&format!(
        "videotestsrc num-buffers=2 ! dlcswap name=e execution-provider=cpu pixel-backend=cpu model-file={} \
         detector-model={} recognition-model={} source={} ! fakesink",
        inswapper.display(),
        detector.display(),
        arcface.display(),
        media.join("newton.png").display()
    ));
}
