-- Handlers, verifiers and events of the events service (LUNA PLATFORM 5 API v6).
-- No foreign key to accounts: those live in the faces service's tables (ARCHITECTURE §2);
-- account ids arrive already verified in AccountScope.

create table handlers (
    handler_id       uuid        primary key,
    account_id       uuid        not null,
    description      text        not null default '',
    -- 0 static (own policies), 1 dynamic (policies per request), 2 lambda.
    handler_type     smallint    not null check (handler_type in (0, 1, 2)),
    -- Validated policies with defaults applied; null for dynamic and lambda handlers.
    policies         jsonb,
    lambda_id        uuid,
    create_time      timestamptz not null default now(),
    last_update_time timestamptz not null default now()
);
create index handlers_account_time on handlers (account_id, create_time desc, handler_id desc);

create table verifiers (
    verifier_id      uuid        primary key,
    account_id       uuid        not null,
    description      text        not null default '',
    policies         jsonb       not null,
    version          int         not null default 1,
    create_time      timestamptz not null default now(),
    last_update_time timestamptz not null default now()
);
create index verifiers_account_time on verifiers (account_id, create_time desc, verifier_id desc);

-- One row per event: every filterable field is a column (indexed), `data` is the event as
-- GET /6/events/{event_id} renders it. Events outlive their handler, so no foreign key.
create table events (
    event_id                      uuid             primary key,
    account_id                    uuid             not null,
    handler_id                    uuid             not null,
    create_time                   timestamptz      not null,
    end_time                      timestamptz      not null,
    source                        text,
    stream_id                     uuid,
    external_id                   text,
    user_data                     text             not null default '',
    track_id                      text,
    tags                          text[]           not null default '{}',
    city                          text,
    area                          text,
    district                      text,
    street                        text,
    house_number                  text,
    longitude                     double precision,
    latitude                      double precision,
    face_id                       uuid,
    top_matching_candidates_label text,
    -- Labels of every match result, for the top_matching_candidates_label filter.
    match_labels                  text[]           not null default '{}',
    top_similar_object_id         text,
    top_similar_external_id       text,
    top_similar_object_similarity double precision,
    gender                        smallint,
    age                           smallint,
    emotion                       smallint,
    mask                          smallint,
    ethnic_group                  smallint,
    liveness                      smallint,
    deepfake                      smallint,
    apparent_age                  smallint,
    apparent_gender               smallint,
    headwear_state                smallint,
    headwear_apparent_color       text,
    sleeve_length                 text,
    upper_clothing_colors         text[],
    lower_garment_colors          text[],
    lower_garment_type            text,
    shoes_apparent_color          text,
    backpack_state                smallint,
    meta                          jsonb,
    data                          jsonb            not null,
    -- Commit order, for replay and for ties in create_time.
    seq                           bigserial        not null
);
create index events_account_time on events (account_id, create_time desc, event_id desc);
create index events_create_time on events (create_time desc, event_id desc);
create index events_account_event on events (account_id, event_id);
create index events_end_time on events (account_id, end_time);
create index events_handler on events (account_id, handler_id, create_time desc);
create index events_source on events (account_id, source);
create index events_stream on events (account_id, stream_id);
create index events_external on events (account_id, external_id);
create index events_track on events (account_id, track_id);
create index events_face on events (account_id, face_id);
create index events_user_data on events (account_id, user_data);
create index events_tags on events using gin (tags);
create index events_match_labels on events using gin (match_labels);
create index events_location on events (account_id, city, area, district, street, house_number);
create index events_geo on events (account_id, longitude, latitude);
create index events_top_object on events (account_id, top_similar_object_id);
create index events_top_external on events (account_id, top_similar_external_id);
create index events_top_similarity on events (account_id, top_similar_object_similarity);
create index events_face_attrs on events (account_id, gender, age, emotion, mask);
create index events_quality_attrs on events (account_id, liveness, deepfake, ethnic_group);
create index events_body_attrs on events (account_id, apparent_gender, apparent_age);
create index events_meta on events using gin (meta jsonb_path_ops);

-- Descriptors kept with events, for matching by events (never part of the event JSON).
create table event_descriptors (
    event_id   uuid     not null references events (event_id) on delete cascade,
    -- 1 face, 2 body (luna.events.v1.DescriptorKind).
    kind       smallint not null check (kind in (1, 2)),
    version    int      not null,
    descriptor bytea    not null,
    primary key (kind, version, event_id)
);
create index event_descriptors_event on event_descriptors (event_id);
