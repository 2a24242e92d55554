// Mirrors migrations/ (as `diesel print-schema` writes it); keep the two in step.

diesel::table! {
    symbols (symbol) {
        symbol -> Text,
        nasdaq_traded -> Nullable<Bool>,
        security_name -> Nullable<Text>,
        listing_exchange -> Nullable<Text>,
        market_category -> Nullable<Text>,
        etf -> Nullable<Bool>,
        round_lot_size -> Nullable<Int4>,
        test_issue -> Nullable<Bool>,
        financial_status -> Nullable<Text>,
        cqs_symbol -> Nullable<Text>,
        nasdaq_symbol -> Nullable<Text>,
        next_shares -> Nullable<Bool>,
    }
}

diesel::table! {
    daily_prices (symbol, day) {
        symbol -> Text,
        day -> Date,
        open -> Nullable<Float8>,
        high -> Nullable<Float8>,
        low -> Nullable<Float8>,
        close -> Float8,
        adj_close -> Nullable<Float8>,
        volume -> Nullable<Int8>,
    }
}

diesel::table! {
    ingest_files (symbol) {
        symbol -> Text,
        path -> Text,
        source -> Text,
        asset_class -> Text,
        size_bytes -> Int8,
        mtime_ns -> Int8,
        content_hash -> Text,
        rows_loaded -> Int8,
        rows_rejected -> Int8,
        last_day -> Nullable<Date>,
        loaded_at -> Timestamptz,
    }
}

diesel::table! {
    ingest_rejects (path, line) {
        path -> Text,
        line -> Int8,
        symbol -> Text,
        reason -> Text,
        raw -> Text,
    }
}

diesel::table! {
    data_quality (symbol, day, rule) {
        symbol -> Text,
        day -> Date,
        rule -> Text,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    runs (id) {
        id -> Int8,
        job -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        status -> Text,
        as_of -> Nullable<Date>,
        vars -> Jsonb,
        summary -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        exit_code -> Nullable<Int4>,
        report_dir -> Nullable<Text>,
    }
}

diesel::table! {
    change_log (id) {
        id -> Int8,
        source -> Text,
        symbol -> Text,
        first_at -> Timestamptz,
        last_at -> Timestamptz,
        logged_at -> Timestamptz,
        applied_by -> Array<Text>,
    }
}

diesel::table! {
    change_log_consumers (consumer) {
        consumer -> Text,
        source -> Text,
        applied_id -> Int8,
        rebuild -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    symbols,
    daily_prices,
    ingest_files,
    ingest_rejects,
    data_quality,
    runs,
    change_log,
    change_log_consumers,
);
