package com.webank.ai.fate.board;

public final class Fateboard {
    public static void main(String[] args) {
        System.out.println("Fateboard listening on 8080, config " + System.getProperty("spring.config.location"));
    }
}
